package tokenize

import "unicode/utf8"

// byteToRune is GPT-2's bytes_to_unicode table: printable bytes map to
// themselves, the rest to U+0100.. in byte order, so every byte-level token is
// a printable string in tokenizer.json.
var byteToRune = func() [256]rune {
	var t [256]rune
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			t[b] = rune(b)
		} else {
			t[b] = rune(256 + n)
			n++
		}
	}
	return t
}()

// runeToByte inverts byteToRune; -1 marks runes that are not byte-level.
var runeToByte = func() map[rune]byte {
	m := make(map[rune]byte, 256)
	for b, r := range byteToRune {
		m[r] = byte(b)
	}
	return m
}()

// fromByteLevel maps a byte-level token string (as stored in tokenizer.json)
// back to the raw bytes it stands for. ok is false if a rune is outside the
// 256-symbol alphabet; the caller then keeps the token's UTF-8 bytes.
func fromByteLevel(s string) (raw string, ok bool) {
	buf := make([]byte, 0, len(s))
	for _, r := range s {
		b, found := runeToByte[r]
		if !found {
			return s, false
		}
		buf = append(buf, b)
	}
	return string(buf), true
}

// toByteLevel maps raw bytes to their byte-level string form.
func toByteLevel(raw string) string {
	buf := make([]byte, 0, 2*len(raw))
	for i := 0; i < len(raw); i++ {
		buf = utf8.AppendRune(buf, byteToRune[raw[i]])
	}
	return string(buf)
}
