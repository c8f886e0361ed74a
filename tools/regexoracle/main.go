// Command regexoracle answers regular-expression questions with Go's own regexp package,
// anchored exactly as Prometheus's relabel.NewRegexp anchors a relabel regex. promshard's
// tests use it as the ground truth for src/prom/regex.ts.
//
// Input: one JSON object per line on stdin:
//
//	{"re": "...", "dotAll": false, "input": "...", "template": "..."}
//
// dotAll false gives Prometheus 2.x's `^(?:re)$`, true gives 3.x's `^(?s:re)$`.
// Output: one JSON object per input line, in order:
//
//	{"error": null|"...", "names": [...], "matches": bool, "groups": [string|null...]|null,
//	 "expand": string|null, "replaceAll": string|null}
//
// groups is FindStringSubmatchIndex turned into text (null for a group that did not take part),
// expand is ExpandString(nil, template, input, match) when there is a match, and replaceAll is
// ReplaceAllString(input, template).
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
)

type request struct {
	Re       string `json:"re"`
	DotAll   bool   `json:"dotAll"`
	Input    string `json:"input"`
	Template string `json:"template"`
}

type response struct {
	Error      *string   `json:"error"`
	Names      []string  `json:"names"`
	Matches    bool      `json:"matches"`
	Groups     []*string `json:"groups"`
	Expand     *string   `json:"expand"`
	ReplaceAll *string   `json:"replaceAll"`
}

func answer(q request) response {
	prefix := "^(?:"
	if q.DotAll {
		prefix = "^(?s:"
	}
	re, err := regexp.Compile(prefix + q.Re + ")$")
	if err != nil {
		msg := err.Error()
		return response{Error: &msg}
	}
	r := response{Names: re.SubexpNames(), Matches: re.MatchString(q.Input)}
	if idx := re.FindStringSubmatchIndex(q.Input); idx != nil {
		r.Groups = make([]*string, len(idx)/2)
		for i := range r.Groups {
			if idx[2*i] >= 0 {
				s := q.Input[idx[2*i]:idx[2*i+1]]
				r.Groups[i] = &s
			}
		}
		e := string(re.ExpandString(nil, q.Template, q.Input, idx))
		r.Expand = &e
	}
	ra := re.ReplaceAllString(q.Input, q.Template)
	r.ReplaceAll = &ra
	return r
}

func main() {
	dec := json.NewDecoder(bufio.NewReaderSize(os.Stdin, 1<<16))
	out := bufio.NewWriterSize(os.Stdout, 1<<16)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	for {
		var q request
		if err := dec.Decode(&q); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			fail(err)
		}
		if err := enc.Encode(answer(q)); err != nil {
			fail(err)
		}
		// Callers may wait for each answer before asking the next question.
		if err := out.Flush(); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "regexoracle:", err)
	os.Exit(2)
}
