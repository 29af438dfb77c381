package usage

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"strconv"
)

// DefaultMinCount is the default suppression threshold of the open data.
const DefaultMinCount = 5

// OpenColumns are the columns of the usage dataset, in order.
var OpenColumns = []string{"date", "service", "department", "channel", "viewed", "started", "validation_failed",
	"submitted", "contacts", "delivered", "dead_lettered",
	"satisfaction_1", "satisfaction_2", "satisfaction_3", "satisfaction_4", "satisfaction_5"}

// OpenRow is one row of the usage dataset. A count from 1 to MinCount-1
// is suppressed (nil; an empty cell in CSV) so that small groups cannot be
// singled out; zero stays zero.
type OpenRow struct {
	Date             string `json:"date"`
	Service          string `json:"service"`
	Department       string `json:"department"`
	Channel          string `json:"channel"`
	Viewed           *int64 `json:"viewed"`
	Started          *int64 `json:"started"`
	ValidationFailed *int64 `json:"validation_failed"`
	Submitted        *int64 `json:"submitted"`
	Contacts         *int64 `json:"contacts"`
	Delivered        *int64 `json:"delivered"`
	DeadLettered     *int64 `json:"dead_lettered"`
	// Answers to the satisfaction question by score (1 to 5), suppressed
	// like the other counts; comments are never in the open data.
	Satisfaction1 *int64 `json:"satisfaction_1"`
	Satisfaction2 *int64 `json:"satisfaction_2"`
	Satisfaction3 *int64 `json:"satisfaction_3"`
	Satisfaction4 *int64 `json:"satisfaction_4"`
	Satisfaction5 *int64 `json:"satisfaction_5"`
}

// Suppress returns n, or nil when 0 < n < min.
func Suppress(n int64, min int) *int64 {
	if n > 0 && n < int64(min) {
		return nil
	}
	return &n
}

// OpenRows turns daily rows into the open dataset with suppression.
func OpenRows(rows []Row, minCount int) []OpenRow {
	out := make([]OpenRow, 0, len(rows))
	for _, r := range rows {
		out = append(out, OpenRow{
			Date: r.Period, Service: r.Service, Department: r.Department, Channel: string(r.Channel),
			Viewed: Suppress(r.Viewed, minCount), Started: Suppress(r.Started, minCount),
			ValidationFailed: Suppress(r.ValidationFailed, minCount), Submitted: Suppress(r.Submitted, minCount),
			Contacts: Suppress(r.Contacts, minCount), Delivered: Suppress(r.Delivered, minCount),
			DeadLettered:  Suppress(r.DeadLettered, minCount),
			Satisfaction1: Suppress(r.Satisfaction[0], minCount), Satisfaction2: Suppress(r.Satisfaction[1], minCount),
			Satisfaction3: Suppress(r.Satisfaction[2], minCount), Satisfaction4: Suppress(r.Satisfaction[3], minCount),
			Satisfaction5: Suppress(r.Satisfaction[4], minCount),
		})
	}
	return out
}

func (o OpenRow) cells() []string {
	num := func(p *int64) string {
		if p == nil {
			return ""
		}
		return strconv.FormatInt(*p, 10)
	}
	return []string{o.Date, o.Service, o.Department, o.Channel, num(o.Viewed), num(o.Started), num(o.ValidationFailed),
		num(o.Submitted), num(o.Contacts), num(o.Delivered), num(o.DeadLettered),
		num(o.Satisfaction1), num(o.Satisfaction2), num(o.Satisfaction3), num(o.Satisfaction4), num(o.Satisfaction5)}
}

// WriteCSV writes the rows as CSV (RFC 4180) with a header line.
func WriteCSV(w io.Writer, rows []OpenRow) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(OpenColumns); err != nil {
		return err
	}
	for _, r := range rows {
		if err := cw.Write(r.cells()); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// OpenDataset is the JSON form of the usage dataset.
type OpenDataset struct {
	From      string    `json:"from"`
	To        string    `json:"to"`
	MinCount  int       `json:"suppression_min_count"`
	License   string    `json:"license"`
	Columns   []string  `json:"columns"`
	Rows      []OpenRow `json:"rows"`
	Generated string    `json:"generated"`
}

// WriteJSON writes the dataset as JSON.
func WriteJSON(w io.Writer, d OpenDataset) error {
	if d.Rows == nil {
		d.Rows = []OpenRow{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(d)
}
