package evalset

import (
	"strings"
	"unicode"
)

// romanisation is one published system for writing Cyrillic in Latin
// letters. Letters missing from a table keep their default (common) form.
type romanisation struct {
	name string
	// letters maps a lower-case Cyrillic letter to its Latin form.
	letters map[rune]string
	// initial overrides letters at the start of a word (Ukrainian
	// passport Є Ye-, but -ie- inside a word).
	initial map[rune]string
	// doubleS writes с as ss between vowels (German, French).
	doubleS bool
}

// common are the letters most systems write alike.
var common = map[rune]string{
	'а': "a", 'б': "b", 'в': "v", 'г': "g", 'ґ': "g", 'д': "d", 'е': "e", 'ё': "e", 'ж': "zh", 'з': "z",
	'и': "i", 'і': "i", 'ї': "i", 'й': "i", 'к': "k", 'л': "l", 'м': "m", 'н': "n", 'о': "o", 'п': "p",
	'р': "r", 'с': "s", 'т': "t", 'у': "u", 'ф': "f", 'х': "kh", 'ц': "ts", 'ч': "ch", 'ш': "sh",
	'щ': "shch", 'ъ': "", 'ы': "y", 'ь': "", 'э': "e", 'ю': "iu", 'я': "ia", 'є': "ie", '\'': "",
	'’': "",
}

// Systems for Ukrainian names (г is h, и is y) and Russian names.
var (
	// Ukrainian passports (KMU 2010).
	uaPassport = romanisation{name: "ua-passport",
		letters: map[rune]string{'г': "h", 'и': "y", 'й': "i", 'ї': "i", 'є': "ie", 'ю': "iu", 'я': "ia"},
		initial: map[rune]string{'й': "y", 'ї': "yi", 'є': "ye", 'ю': "yu", 'я': "ya"}}
	// Russian passports since 2010 (ICAO Doc 9303).
	ruPassport = romanisation{name: "ru-passport",
		letters: map[rune]string{'й': "i", 'ъ': "ie", 'ю': "iu", 'я': "ia"}}
	// BGN/PCGN, the older English standard.
	ruBGN = romanisation{name: "ru-bgn",
		letters: map[rune]string{'й': "y", 'ю': "yu", 'я': "ya", 'ё': "yo"},
		initial: map[rune]string{'е': "ye"}}
	germanUA = romanisation{name: "de-duden-ua", doubleS: true,
		letters: map[rune]string{'в': "w", 'г': "h", 'ж': "sch", 'з': "s", 'и': "y", 'й': "j", 'х': "ch",
			'ц': "z", 'ч': "tsch", 'ш': "sch", 'щ': "schtsch", 'ю': "ju", 'я': "ja", 'є': "je", 'ї': "ji"}}
	germanRU = romanisation{name: "de-duden-ru", doubleS: true,
		letters: map[rune]string{'в': "w", 'ж': "sch", 'з': "s", 'й': "j", 'х': "ch", 'ц': "z", 'ч': "tsch",
			'ш': "sch", 'щ': "schtsch", 'ю': "ju", 'я': "ja", 'ё': "jo"},
		initial: map[rune]string{'е': "je"}}
	frenchUA = romanisation{name: "fr-ua", doubleS: true,
		letters: map[rune]string{'г': "h", 'ж': "j", 'и': "y", 'х': "kh", 'ч': "tch", 'ш': "ch", 'щ': "chtch",
			'у': "ou", 'ю': "iou", 'я': "ia", 'й': "i"}}
	frenchRU = romanisation{name: "fr-ru", doubleS: true,
		letters: map[rune]string{'ж': "j", 'х': "kh", 'ч': "tch", 'ш': "ch", 'щ': "chtch", 'у': "ou",
			'ю': "iou", 'я': "ia", 'й': "i", 'ё': "io"}}
	dutchUA = romanisation{name: "nl-ua",
		letters: map[rune]string{'г': "h", 'ж': "zj", 'и': "y", 'х': "ch", 'ч': "tsj", 'ш': "sj", 'щ': "sjtsj",
			'у': "oe", 'ю': "joe", 'я': "ja", 'й': "j", 'є': "je", 'ї': "ji"}}
	dutchRU = romanisation{name: "nl-ru",
		letters: map[rune]string{'ж': "zj", 'х': "ch", 'ч': "tsj", 'ш': "sj", 'щ': "sjtsj", 'у': "oe",
			'ю': "joe", 'я': "ja", 'й': "j", 'ё': "jo"},
		initial: map[rune]string{'е': "je"}}
	polishUA = romanisation{name: "pl-ua",
		letters: map[rune]string{'в': "w", 'г': "h", 'ж': "ż", 'и': "y", 'х': "ch", 'ц': "c", 'ч': "cz",
			'ш': "sz", 'щ': "szcz", 'ю': "ju", 'я': "ja", 'й': "j", 'є': "je", 'ї': "ji"}}
	polishRU = romanisation{name: "pl-ru",
		letters: map[rune]string{'в': "w", 'ж': "ż", 'х': "ch", 'ц': "c", 'ч': "cz", 'ш': "sz", 'щ': "szcz",
			'ю': "ju", 'я': "ja", 'й': "j", 'ы': "y", 'ё': "io"}}
	iso9UA = romanisation{name: "iso9-ua",
		letters: map[rune]string{'г': "h", 'ж': "ž", 'и': "y", 'х': "ch", 'ц': "c", 'ч': "č", 'ш': "š",
			'щ': "šč", 'ю': "ju", 'я': "ja", 'й': "j", 'є': "je", 'ї': "ï"}}
	iso9RU = romanisation{name: "iso9-ru",
		letters: map[rune]string{'ж': "ž", 'х': "ch", 'ц': "c", 'ч': "č", 'ш': "š", 'щ': "šč", 'ю': "ju",
			'я': "ja", 'й': "j", 'ё': "ë"}}
)

func isVowel(r rune) bool {
	return strings.ContainsRune("аеёиіїоуыэюяєaeiouy", unicode.ToLower(r))
}

// romanise writes a Cyrillic name in Latin letters under sys, keeping the
// capitalisation of each word's first letter.
func romanise(s string, sys romanisation) string {
	var b strings.Builder
	rs := []rune(s)
	start := true
	for i, r := range rs {
		lower := unicode.ToLower(r)
		upper := lower != r
		lat, ok := "", false
		if start {
			lat, ok = sys.initial[lower]
		}
		if !ok {
			lat, ok = sys.letters[lower]
		}
		if !ok {
			lat, ok = common[lower]
		}
		if !ok {
			lat = string(r)
		}
		if lower == 'с' && sys.doubleS && i > 0 && i+1 < len(rs) && isVowel(rs[i-1]) && isVowel(rs[i+1]) {
			lat = "ss"
		}
		if upper && lat != "" {
			lr := []rune(lat)
			lat = string(unicode.ToUpper(lr[0])) + string(lr[1:])
		}
		b.WriteString(lat)
		start = !unicode.IsLetter(r) && r != '\'' && r != '’'
	}
	return b.String()
}

// systemsFor are the romanisations a country's records use for Ukrainian
// or Russian names, with their shares: most records copy the passport,
// the rest follow the country's own tradition.
func systemsFor(country string, ukrainian bool) []weighted[romanisation] {
	passport := ruPassport
	if ukrainian {
		passport = uaPassport
	}
	pick := func(ua, ru romanisation) romanisation {
		if ukrainian {
			return ua
		}
		return ru
	}
	switch country {
	case "DE":
		return []weighted[romanisation]{{passport, 0.55}, {pick(germanUA, germanRU), 0.3}, {pick(iso9UA, iso9RU), 0.05},
			{pick(polishUA, polishRU), 0.05}, {ruBGN, 0.05}}
	case "NL":
		return []weighted[romanisation]{{passport, 0.55}, {pick(dutchUA, dutchRU), 0.3}, {pick(frenchUA, frenchRU), 0.1}, {ruBGN, 0.05}}
	}
	return []weighted[romanisation]{{passport, 1}}
}
