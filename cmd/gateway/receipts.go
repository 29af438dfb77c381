package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/kommun/servicegateway/gateway/httpapi"
	"github.com/kommun/servicegateway/gateway/receipt"
)

// setupReceipts loads the receipt keys from GATEWAY_RECEIPT_KEYS (a JWK set
// with private parts, newest first); without it, outside production, a key
// is generated at start and the log says so (receipts then verify only
// while this process runs).
func setupReceipts(cfg config, log *slog.Logger) (*receipt.Keyring, error) {
	if cfg.ReceiptKeys != "" {
		ring, err := receipt.LoadKeyring(cfg.ReceiptKeys)
		if err != nil {
			return nil, fmt.Errorf("GATEWAY_RECEIPT_KEYS: %w", err)
		}
		log.Info("receipt keys loaded", "signing_kid", ring.SigningKeyID(), "keys", len(ring.JWKS().Keys))
		return ring, nil
	}
	if cfg.production() {
		return nil, errors.New("GATEWAY_RECEIPT_KEYS is required with GATEWAY_ENV=production")
	}
	k, err := receipt.Generate()
	if err != nil {
		return nil, err
	}
	ring, err := receipt.NewKeyring([]receipt.Key{k})
	if err != nil {
		return nil, err
	}
	log.Warn("GATEWAY_RECEIPT_KEYS unset: receipts are signed with a key generated at start; they stop verifying after a restart",
		"signing_kid", k.ID)
	return ring, nil
}

// verifyReceipt is `gateway verify-receipt [--keys FILE|URL] FILE`: it
// checks the receipt in FILE (see receipt.File: the compact JWS, or the
// API's answer with `receipt` and optionally `payload`) against the
// gateway's published keys, and the payload's hash when one is given. It
// exits 0 on a good receipt, 1 on a forged receipt or a changed payload,
// 2 on a usage error.
func verifyReceipt(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify-receipt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := strings.TrimRight(getenv("GATEWAY_PUBLIC_URL"), "/")
	if base == "" {
		base = "http://localhost:8080"
	}
	keys := fs.String("keys", base+httpapi.ReceiptKeysPath, "the receipt keys (JWKS): a file or an http(s) URL")
	var attachments []string
	fs.Func("attachment", "a file that was attached (repeat for several): its SHA-256 must be one the receipt names", func(s string) error {
		attachments = append(attachments, s)
		return nil
	})
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: gateway verify-receipt [--keys FILE|URL] [--attachment FILE]... FILE")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		if err == nil {
			fs.Usage()
		}
		return 2
	}
	b, err := readLimited(fs.Arg(0), receipt.MaxFile)
	if err != nil {
		fmt.Fprintln(stderr, "verify-receipt:", err)
		return 2
	}
	f, err := receipt.ParseFile(b)
	if err != nil {
		fmt.Fprintln(stderr, "verify-receipt:", err)
		return 1
	}
	for _, path := range attachments {
		d, err := digestFile(path)
		if err != nil {
			fmt.Fprintln(stderr, "verify-receipt:", err)
			return 2
		}
		f.Attachments = append(f.Attachments, d)
	}
	set, err := loadJWKS(ctx, *keys)
	if err != nil {
		fmt.Fprintln(stderr, "verify-receipt: keys:", err)
		return 2
	}
	res, err := receipt.Check(set, f)
	if err != nil {
		fmt.Fprintln(stdout, "INVALID:", err)
		return 1
	}
	fmt.Fprintf(stdout, "VALID receipt %s: service %s %s, received %s, channel %s, key %s, verification code %s\n",
		res.Reference, res.Service, res.ServiceVersion, res.ReceivedAt, res.Channel, res.KeyID, res.Code)
	if res.PayloadChecked {
		fmt.Fprintln(stdout, "payload: matches the receipt")
	} else {
		fmt.Fprintln(stdout, "payload: not given, not checked")
	}
	fmt.Fprintf(stdout, "attachments: %d named in the receipt; %d given, each matches\n", len(res.Attachments), res.AttachmentsChecked)
	return 0
}

// digestFile is receipt.FileDigest of the file at path.
func digestFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return receipt.FileDigest(f)
}

func readLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, max)
	}
	return b, nil
}

// loadJWKS reads the keys from a file or fetches them (10 s timeout, size
// bounded).
func loadJWKS(ctx context.Context, src string) (receipt.JWKSet, error) {
	if !strings.HasPrefix(src, "http://") && !strings.HasPrefix(src, "https://") {
		b, err := readLimited(src, receipt.MaxJWKS)
		if err != nil {
			return receipt.JWKSet{}, err
		}
		return receipt.ParseJWKS(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return receipt.JWKSet{}, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return receipt.JWKSet{}, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return receipt.JWKSet{}, fmt.Errorf("%s: %s", src, res.Status)
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, receipt.MaxJWKS+1))
	if err != nil {
		return receipt.JWKSet{}, err
	}
	return receipt.ParseJWKS(b)
}
