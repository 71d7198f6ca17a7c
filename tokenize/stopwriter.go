package tokenize

import (
	"io"
	"strings"
	"unicode/utf8"
)

// StopWriter turns generated token pieces (raw bytes, possibly splitting a
// UTF-8 character) into text: it writes only complete characters, holds back
// a tail that could be the start of a stop string, and cuts the text where a
// stop string appears.
type StopWriter struct {
	w       io.Writer // may be nil
	stops   []string
	buf     []byte // everything generated so far
	written int    // bytes of buf already written to w
	stopped bool   // a stop string was found; buf ends before it
	err     error  // first write error
}

// NewStopWriter returns a StopWriter writing to w (may be nil) that stops at
// the first of stops.
func NewStopWriter(w io.Writer, stops []string) *StopWriter {
	return &StopWriter{w: w, stops: stops}
}

// Add appends a token's bytes and writes what is safe to show; it returns
// false once generation should stop.
func (s *StopWriter) Add(piece string) bool {
	if s.stopped {
		return false
	}
	from := len(s.buf)
	s.buf = append(s.buf, piece...)
	for _, stop := range s.stops {
		// a stop string found now ends within the new bytes
		lo := min(max(0, from-len(stop)+1), len(s.buf))
		if i := strings.Index(string(s.buf[lo:]), stop); i >= 0 {
			s.buf = s.buf[:lo+i]
			s.stopped = true
		}
	}
	if s.stopped {
		s.flush(len(s.buf))
		return false
	}
	safe := completeUTF8(s.buf)
	for _, stop := range s.stops {
		safe = min(safe, len(s.buf)-stopPrefix(s.buf, stop))
	}
	s.flush(safe)
	return s.err == nil
}

// Finish writes whatever was held back (an incomplete character at the very
// end is written as its bytes).
func (s *StopWriter) Finish() error {
	s.flush(len(s.buf))
	return s.err
}

// Text is the text so far, cut before a stop string.
func (s *StopWriter) Text() string { return string(s.buf) }

func (s *StopWriter) flush(upto int) {
	if upto <= s.written {
		return
	}
	if s.w != nil && s.err == nil {
		_, s.err = s.w.Write(s.buf[s.written:upto])
		if f, ok := s.w.(interface{ Flush() error }); ok && s.err == nil {
			s.err = f.Flush()
		}
	}
	s.written = upto
}

// completeUTF8 returns the length of the longest prefix of b that does not
// end inside a UTF-8 character (invalid bytes count as complete).
func completeUTF8(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return i
			}
			return len(b)
		}
	}
	return len(b)
}

// stopPrefix returns the length of the longest suffix of b that is a proper
// prefix of stop (the bytes that may yet become stop).
func stopPrefix(b []byte, stop string) int {
	for k := min(len(stop)-1, len(b)); k > 0; k-- {
		if string(b[len(b)-k:]) == stop[:k] {
			return k
		}
	}
	return 0
}
