package services

import (
	"bufio"
	"bytes"
	"strings"

	"github.com/kommun/servicegateway/gateway"
)

// keyLines finds the line a TOML key is written on, so that every problem in
// a manifest can name its line. The TOML decoder reports lines for syntax
// errors only; this small scanner covers the rest (unknown keys, bad values).
type keyLines struct {
	keys  map[string][]int            // full dotted key -> lines, in file order
	elems map[string][]map[string]int // array-of-tables name -> element -> key -> line ("" is the header)
	taken map[string]int
}

func indexKeys(data []byte) *keyLines {
	kl := &keyLines{keys: map[string][]int{}, elems: map[string][]map[string]int{}, taken: map[string]int{}}
	table, array := "", ""
	depth := 0        // open brackets of a multi-line array value
	inString := false // inside a """ or ''' string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if inString {
			if strings.Contains(line, `"""`) || strings.Contains(line, `'''`) {
				inString = false
			}
			continue
		}
		if depth > 0 {
			depth += strings.Count(line, "[") - strings.Count(line, "]")
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		switch {
		case strings.HasPrefix(line, "[["):
			name := strings.TrimSpace(strings.Trim(strings.SplitN(line, "]]", 2)[0], "[ "))
			table, array = name, name
			kl.elems[name] = append(kl.elems[name], map[string]int{"": n})
			kl.keys[name] = append(kl.keys[name], n)
			continue
		case line[0] == '[':
			table = strings.TrimSpace(strings.Trim(strings.SplitN(line, "]", 2)[0], "[ "))
			if array != "" && !strings.HasPrefix(table, array+".") {
				array = ""
			}
			kl.keys[table] = append(kl.keys[table], n)
			continue
		}
		eq := strings.IndexByte(line, '=')
		if eq < 0 {
			continue
		}
		key := strings.TrimSpace(line[:eq])
		key = strings.ReplaceAll(strings.ReplaceAll(key, `"`, ""), " ", "")
		full := key
		if table != "" {
			full = table + "." + key
		}
		kl.keys[full] = append(kl.keys[full], n)
		if array != "" && table == array {
			el := kl.elems[array]
			el[len(el)-1][key] = n
		}
		value := strings.TrimSpace(line[eq+1:])
		if strings.HasPrefix(value, `"""`) || strings.HasPrefix(value, `'''`) {
			rest := value[3:]
			inString = !strings.Contains(rest, value[:3])
		} else if strings.HasPrefix(value, "[") {
			depth = strings.Count(value, "[") - strings.Count(value, "]")
		}
	}
	return kl
}

// take returns the line of the next occurrence of key not yet taken.
func (kl *keyLines) take(key string) int {
	lines := kl.keys[key]
	i := kl.taken[key]
	if i >= len(lines) {
		if len(lines) > 0 {
			return lines[len(lines)-1]
		}
		return 0
	}
	kl.taken[key] = i + 1
	return lines[i]
}

// line returns the line of key; for a key of an array of tables
// ("fields.type"), the key within element idx, else that element's header.
func (kl *keyLines) line(key string, idx int) int {
	if arr, sub, ok := strings.Cut(key, "."); ok {
		if els, isArray := kl.elems[arr]; isArray && idx < len(els) {
			if n, ok := els[idx][sub]; ok {
				return n
			}
			return els[idx][""]
		}
	}
	if lines := kl.keys[key]; len(lines) > 0 {
		return lines[0]
	}
	if parent, _, ok := strings.Cut(key, "."); ok {
		if lines := kl.keys[parent]; len(lines) > 0 {
			return lines[0]
		}
	}
	return 1
}

// forMessage returns the manifest line that makes a translation necessary.
func (kl *keyLines) forMessage(svc *gateway.Service, id string) int {
	for i := range svc.Fields {
		if strings.HasPrefix(id, svc.ID+".field."+svc.Fields[i].Name+".") {
			return kl.line("fields.name", i)
		}
	}
	switch {
	case strings.HasPrefix(id, "department."):
		return kl.line("department", 0)
	case strings.HasPrefix(id, "category."):
		return kl.line("category", 0)
	}
	return kl.line("id", 0)
}
