package wire

import "context"

// HeaderTraceparent is the W3C Trace Context header
// (https://www.w3.org/TR/trace-context/) a client may send with a
// transaction; the coordinator passes it on to the participants' requests.
const HeaderTraceparent = "traceparent"

type traceparentKey struct{}

// WithTraceparent returns ctx carrying the traceparent tp; Do sends it as
// the traceparent header. An invalid tp is dropped (ctx is returned as is).
func WithTraceparent(ctx context.Context, tp string) context.Context {
	if !ValidTraceparent(tp) {
		return ctx
	}
	return context.WithValue(ctx, traceparentKey{}, tp)
}

// TraceparentFrom returns the traceparent ctx carries, or "".
func TraceparentFrom(ctx context.Context) string {
	tp, _ := ctx.Value(traceparentKey{}).(string)
	return tp
}

// ValidTraceparent reports whether tp has the W3C form
// version-traceid-parentid-flags (2, 32, 16 and 2 lowercase hex digits),
// with version not ff and neither id all zeros. Later versions may append
// fields after a dash; those are accepted too.
func ValidTraceparent(tp string) bool {
	if len(tp) < 55 || (len(tp) > 55 && tp[55] != '-') || tp[:2] == "ff" || (tp[:2] == "00" && len(tp) != 55) {
		return false
	}
	if tp[2] != '-' || tp[35] != '-' || tp[52] != '-' {
		return false
	}
	for _, f := range [][2]int{{0, 2}, {3, 35}, {36, 52}, {53, 55}} {
		if !lowerHex(tp[f[0]:f[1]]) {
			return false
		}
	}
	return !allZero(tp[3:35]) && !allZero(tp[36:52])
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func allZero(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}
