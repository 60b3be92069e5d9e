package kafkaio

import (
	"strings"
	"testing"
)

func TestCheckTopic(t *testing.T) {
	for _, ok := range []string{"a", "sensors.dlq", "train-digits_1.counts", strings.Repeat("x", MaxTopicLength)} {
		if err := CheckTopic(ok); err != nil {
			t.Errorf("CheckTopic(%q) = %v", ok, err)
		}
	}
	for bad, want := range map[string]string{
		"":                                    "empty",
		".":                                   "not allowed",
		"..":                                  "not allowed",
		"../../etc/passwd":                    `'/' at byte 2`,
		"a b":                                 `' ' at byte 1`,
		"tópico":                              `'ó' at byte 1`,
		strings.Repeat("x", MaxTopicLength+1): "250 characters",
		"sensors\x1b]0;owned\x07":             `'\x1b' at byte 7`,
	} {
		if err := CheckTopic(bad); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckTopic(%q) = %v, want an error saying %s", bad, err, want)
		}
	}
}
