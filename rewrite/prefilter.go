package rewrite

// mayRewrite is the cheap test that keeps the common case (nothing to rewrite) fast: it reports whether s
// contains, at the start of a word, a name some enabled rule looks for. It must never say no where a rule
// could apply. A rule only fires on a bare identifier token, and a token boundary before an identifier can
// follow anything but a letter, '_' or '$' (a digit can: "?1random"), so only those disqualify a match.
func mayRewrite(s string, opts Options) bool {
	if !opts.Random && !opts.Time {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20 // lower-cases letters; a non-letter landing in range fails hasPrefixFold
		if c < 'c' || c > 'u' {
			continue
		}
		if i > 0 && wordByte(s[i-1]) {
			continue
		}
		rest := s[i:]
		switch c {
		case 'r':
			if opts.Random && hasPrefixFold(rest, "random") {
				return true
			}
		case 'd':
			if opts.Time && hasPrefixFold(rest, "date") { // date, datetime
				return true
			}
		case 't':
			if opts.Time && hasPrefixFold(rest, "time") { // time, timediff
				return true
			}
		case 's':
			if opts.Time && hasPrefixFold(rest, "strftime") {
				return true
			}
		case 'j':
			if opts.Time && hasPrefixFold(rest, "julianday") {
				return true
			}
		case 'u':
			if opts.Time && hasPrefixFold(rest, "unixepoch") {
				return true
			}
		case 'c':
			if opts.Time && hasPrefixFold(rest, "current_") {
				return true
			}
		}
	}
	return false
}

// wordByte reports whether c glues to a following letter as part of one token (letters, '_', '$').
func wordByte(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$'
}

// hasPrefixFold reports whether s starts with lower, ignoring ASCII case; lower is lower-case ASCII.
func hasPrefixFold(s, lower string) bool {
	if len(s) < len(lower) {
		return false
	}
	for i := 0; i < len(lower); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
