package telemetrytest

import "testing"

func TestNumbersMatchWhole(t *testing.T) {
	logs := []byte(`{"msg":"request","duration_ms":0.619878}` + "\n" + `{"msg":"x","year":1987}` + "\n")
	got := ScanForPHI(nil, logs, nil, []string{"1987"})
	if len(got) != 1 || got[0].Text != "1987" {
		t.Fatalf("want only the whole-number match, got %v", got)
	}
}
