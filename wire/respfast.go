package wire

import "github.com/concordtx/concord"

// appendSubmitResponse appends r as json.Marshal encodes it, and reports
// whether it could: every string must be plain (printable ASCII that JSON
// writes as is) and every vote and outcome known; otherwise the caller uses
// json.Marshal. The answer to every submit goes this way.
func appendSubmitResponse(b []byte, r *SubmitResponse) ([]byte, bool) {
	// Past the last known value, MarshalText fails, and json.Marshal with it.
	if r.Outcome > concord.OutcomeAborted || !plainOut(string(r.ID)) || !plainOut(r.Reason) {
		return b, false
	}
	b = append(b, `{"id":"`...)
	b = append(b, r.ID...)
	b = append(b, `","outcome":"`...)
	b = append(b, r.Outcome.String()...)
	b = append(b, '"')
	if r.Reason != "" {
		b = append(b, `,"reason":"`...)
		b = append(b, r.Reason...)
		b = append(b, '"')
	}
	if r.Branches == nil {
		return append(b, `,"branches":null}`...), true
	}
	b = append(b, `,"branches":[`...)
	for i, br := range r.Branches {
		if br.Vote > concord.VoteUnreachable || !plainOut(br.Participant) || !plainOut(br.Reason) {
			return b, false
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"participant":"`...)
		b = append(b, br.Participant...)
		b = append(b, `","vote":"`...)
		b = append(b, br.Vote.String()...)
		b = append(b, '"')
		if br.Reason != "" {
			b = append(b, `,"reason":"`...)
			b = append(b, br.Reason...)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	return append(b, "]}"...), true
}

// plainOut reports whether json.Marshal writes s as is between quotes:
// printable ASCII other than the quote, the backslash and the characters it
// escapes for HTML (<, >, &).
func plainOut(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}
