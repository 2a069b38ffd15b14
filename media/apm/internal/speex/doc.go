// Package speex wraps speexdsp's echo canceller and preprocessor for the
// echo harness in media/apm's tests, which measures it against the
// canceller dialtone ships. It is not part of the library's build: only
// those tests import it, so programs using dialtone do not link speexdsp.
// Without cgo the package is empty.
package speex
