package match

import (
	"strings"
	"unicode"

	"github.com/gosimple/unidecode"
)

// Names are compared in three forms, from strict to loose:
//
//   - the folded form: the name in Latin letters (Unidecode for other
//     scripts), lower case, without diacritics, spaces or punctuation.
//     "Олександр" and "Oleksandr" fold to the same form.
//   - the romanisation key: the folded form with the differences between
//     romanisations of one sound folded away. Ukrainian, Russian, German,
//     French, Dutch, Polish and ISO 9 spellings of Шевченко (Shevchenko,
//     Schewtschenko, Chevtchenko, Sjevtsjenko, Szewczenko, Ševčenko) share a
//     key, as do Yurii, Iurii, Jurij and Joeri.
//   - the consonant skeleton: the key without vowels and semivowels. Arabic
//     and Ge'ez script write few or no vowels, so "محمد" (mhmd), Mohammed,
//     Muhammad and Mohamad share a skeleton, as do ተስፋይ and Tesfay.
//
// The symbols of a key are not letters one would read: they only need to be
// equal for equal sounds.

// letterFold maps letters whose diacritics carry a sound Unidecode would
// lose (š is sh, not s) to their usual Latin digraphs; other diacritics are
// dropped by Unidecode.
var letterFold = strings.NewReplacer(
	"š", "sh", "Š", "sh", "č", "ch", "Č", "ch", "ž", "zh", "Ž", "zh",
	"ŝ", "shch", "Ŝ", "shch", "ś", "sh", "Ś", "sh", "ć", "ch", "Ć", "ch",
	"ź", "zh", "Ź", "zh", "ż", "zh", "Ż", "zh", "ş", "sh", "Ş", "sh",
	"ç", "ch", "Ç", "ch", "ł", "l", "Ł", "l", "ß", "ss", "ø", "o", "Ø", "o",
	"ı", "i", "ğ", "g", "Ğ", "g",
)

// romanStage1 folds consonant spellings into classes. Longer spellings come
// first: the replacer takes the first that matches at each position.
var romanStage1 = strings.NewReplacer(
	// Sibilants and affricates: ш ж ч щ in every romanisation, and the
	// English, French and German spellings of Arabic ش and ج.
	"schtsch", "$", "shtch", "$", "chtch", "$", "sjtsj", "$", "szcz", "$", "shch", "$",
	"dzh", "J", "dsch", "J", "dsh", "J", "dj", "J",
	"tsch", "$", "tsj", "$", "tch", "$", "tsh", "$", "sch", "$",
	"sh", "$", "ch", "$", "zh", "$", "sz", "$", "cz", "$", "sj", "$", "zj", "$",
	// Velar and glottal fricatives: х (kh, ch, h), Ukrainian г (h) and
	// Russian г (g), Arabic ح خ ه غ.
	"kh", "G", "gh", "G", "h", "G", "g", "G",
	// Sibilants s, z and the affricate ц (ts, tz, German z, ISO c).
	"ts", "Z", "tz", "Z", "ce", "Ze", "ci", "Zi", "cy", "Zy", "z", "Z", "s", "Z",
	// Stops and the rest.
	"ck", "K", "qu", "K", "q", "K", "c", "K", "k", "K", "x", "KZ",
	"ph", "F", "f", "F", "th", "T", "w", "V", "v", "V",
)

// romanStage2 folds vowel spellings: y, j and i (й, ы, и, і and the
// iotated vowels ю я є ї written with y, i or j), Dutch and French u (oe, ou).
var romanStage2 = strings.NewReplacer(
	"ou", "u", "oe", "u", "oo", "u", "ee", "i", "ey", "ai", "ay", "ai", "ei", "ai", "y", "i", "j", "i",
)

// folded is a name token in its three forms. abjad is set for words
// written in a script whose transliteration does not say the vowels
// reliably (Arabic, Ge'ez): their consonants are all there is to compare.
type folded struct {
	fold, key, skel string
	abjad           bool
}

func (f folded) empty() bool { return f.fold == "" }

// Latin writes s in Latin letters: Unidecode for other scripts, the
// diacritics that carry a sound turned into digraphs, then lower case.
func Latin(s string) string {
	return strings.ToLower(unidecode.Unidecode(letterFold.Replace(s)))
}

// tokens splits a name into words of letters. Apostrophes and the
// Unidecode marks for Arabic hamza and ayn disappear without splitting a
// word; the ta marbuta mark is the vowel a; every other non-letter splits.
// fromAbjad is set when the name was written in a script without short
// vowels (Arabic), which changes how articles are recognised.
func tokens(s string, orthography *strings.Replacer) (out []string, fromAbjad bool) {
	for _, r := range s {
		if unicode.Is(unicode.Arabic, r) || unicode.Is(unicode.Ethiopic, r) {
			fromAbjad = true
			break
		}
	}
	if orthography != nil {
		s = orthography.Replace(strings.ToLower(s))
	}
	lat := Latin(s)
	var b strings.Builder
	flush := func() {
		if b.Len() > 0 {
			out = append(out, b.String())
			b.Reset()
		}
	}
	for _, r := range lat {
		switch {
		case r >= 'a' && r <= 'z':
			b.WriteRune(r)
		case r == '@':
			b.WriteByte('a')
		case r == '\'' || r == '`' || r == '’' || r == 'ʼ' || r == 'ʿ' || r == 'ʾ':
		default:
			flush()
		}
	}
	flush()
	return out, fromAbjad
}

// articles are words that come and go between spellings of one name: the
// Arabic article in its romanisations, and nasab and Dutch or German
// particles. They are dropped before names are compared.
var articles = map[string]bool{
	"al": true, "el": true, "ul": true, "ad": true, "ar": true, "as": true, "ash": true, "at": true,
	"az": true, "an": true, "ed": true, "er": true, "es": true, "bin": true, "ibn": true, "bint": true,
	"ben": true, "van": true, "von": true, "der": true, "den": true, "de": true, "la": true, "le": true,
	"du": true, "di": true, "da": true, "dos": true, "l": true,
}

// abdForms are the romanisations of Arabic "abd" (servant of), which joins
// the word after it into one name: Abd al-Rahman, Abdul Rahman,
// Abdelrahman and Abdurrahman are one name.
var abdForms = map[string]bool{"abd": true, "abdul": true, "abdel": true, "abdal": true, "abdu": true,
	"abdoul": true, "abdol": true, "abdou": true, "abdur": true, "abdel-": true}

// nameWords turns a name into the words compared, articles dropped and
// "abd" compounds joined.
func nameWords(s string, orthography *strings.Replacer) (words []string, abjad bool) {
	raw, abjad := tokens(s, orthography)
	var out []string
	for i := 0; i < len(raw); i++ {
		w := raw[i]
		if abjad && strings.HasPrefix(w, "bd") {
			// The ayn of عبد is dropped by the transliteration.
			w = "a" + w
		}
		if articles[w] && len(raw) > 1 {
			continue
		}
		if abdForms[w] && i+1 < len(raw) {
			next := raw[i+1]
			for articles[next] && i+2 < len(raw) {
				i++
				next = raw[i+1]
			}
			if abjad && len(next) > 3 && next[0] == 'l' {
				next = next[1:]
			}
			out = append(out, "abd"+next)
			i++
			continue
		}
		out = append(out, w)
	}
	return out, abjad
}

// withoutArticle returns the words with an article written onto the first
// of them taken off (Alkhatib, Elmasri, and ال as Unidecode writes it), and
// false when there is none. Both forms are compared: Alexander is not an
// article and a name.
func withoutArticle(ws []string, abjad bool) ([]string, bool) {
	if len(ws) == 0 {
		return nil, false
	}
	w := ws[0]
	var bare string
	switch {
	case abjad && len(w) > 3 && w[0] == 'l':
		bare = w[1:]
	case len(w) >= 6 && (strings.HasPrefix(w, "al") || strings.HasPrefix(w, "el")):
		bare = w[2:]
	default:
		return nil, false
	}
	out := append([]string{bare}, ws[1:]...)
	return out, true
}

// foldWord computes the three forms of one word.
func foldWord(w string, abjad bool) folded {
	f := folded{fold: w, abjad: abjad}
	k := w
	// A final h after a vowel is silent (Fatimah, Fereshteh, Abdullah), and
	// so is the final ه of Arabic and Persian names.
	if n := len(k); n > 3 && k[n-1] == 'h' && (abjad || strings.ContainsRune("aeiou", rune(k[n-2]))) {
		k = k[:n-1]
	}
	// Glued forms of "abd" compounds and of the article.
	for _, p := range []string{"abdoul", "abdoul", "abdul", "abdel", "abdal", "abdur", "abdol", "abdou", "abdu"} {
		if strings.HasPrefix(k, p) && len(k) > len(p)+2 {
			k = "abd" + k[len(p):]
			break
		}
	}
	k = romanStage2.Replace(romanStage1.Replace(k))
	k = collapse(k)
	f.key = k
	var sk strings.Builder
	for i := 0; i < len(k); i++ {
		switch k[i] {
		case 'a', 'e', 'i', 'o', 'u', 'V':
			continue
		}
		sk.WriteByte(k[i])
	}
	f.skel = collapse(sk.String())
	return f
}

// collapse removes doubled symbols (Mohammed, Hassan, Yurii).
func collapse(s string) string {
	if len(s) < 2 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if i > 0 && s[i] == s[i-1] {
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

// join folds words written together: "Gebre Medhin" and "Gebremedhin".
func join(ws []folded) folded {
	if len(ws) == 1 {
		return ws[0]
	}
	var f, k, s strings.Builder
	abjad := false
	for _, w := range ws {
		abjad = abjad || w.abjad
		f.WriteString(w.fold)
		k.WriteString(w.key)
		s.WriteString(w.skel)
	}
	return folded{fold: f.String(), key: collapse(k.String()), skel: collapse(s.String()), abjad: abjad}
}

// Skeleton returns the consonant skeleton of a name: the loosest of the
// forms names are compared in, and what a search for candidates can use as
// a blocking key (Mohammed, Muhammad and محمد have one skeleton).
func Skeleton(s string) string {
	ws, _ := nameWords(s, nil)
	f := foldAll(ws, false)
	if len(f) == 0 {
		return ""
	}
	return join(f).skel
}
