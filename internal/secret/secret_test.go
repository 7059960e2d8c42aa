package secret

import (
	"bytes"
	"strings"
	"testing"
)

func TestRevealMaskNames(t *testing.T) {
	s := "user=engine password=" + Token("db_pw") + " again " + Token("db_pw") + Token("other")
	if !Contains(s) {
		t.Fatal("Contains: want true")
	}
	if got := Names(s); strings.Join(got, ",") != "db_pw,other" {
		t.Fatalf("Names = %v", got)
	}
	if got, want := Mask(s), "user=engine password=<secret:db_pw> again <secret:db_pw><secret:other>"; got != want {
		t.Fatalf("Mask = %q, want %q", got, want)
	}
	v := Values{"db_pw": "s3cr3t", "other": "x"}
	got, err := v.Reveal(s)
	if err != nil || got != "user=engine password=s3cr3t again s3cr3tx" {
		t.Fatalf("Reveal = %q, %v", got, err)
	}
	if _, err := (Values{"db_pw": "a"}).Reveal(s); err == nil || !strings.Contains(err.Error(), "other") {
		t.Fatalf("Reveal with a missing secret: err = %v, want one naming it", err)
	}
	if Contains("plain ${text}") {
		t.Fatal("Contains on plain text: want false")
	}
}

func TestRedactorSplitWrites(t *testing.T) {
	var out bytes.Buffer
	v := Values{"pw": "hunter2", "long": "hunter2-and-more"}
	w := v.Writer(&out)
	for _, chunk := range []string{"the pass is hun", "ter2\nand hunter2-and-", "more too\ntail hunt", "er2"} {
		if _, err := w.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if strings.Contains(got, "hunter2") || strings.Contains(got, "more too") && strings.Contains(got, "-and-") {
		t.Fatalf("secret leaked: %q", got)
	}
	want := "the pass is ********\nand ******** too\ntail ********"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
