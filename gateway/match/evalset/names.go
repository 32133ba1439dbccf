package evalset

// A name of a population written in a script other than Latin (or in a
// Latin orthography of its own), with the Latin spellings it is found
// under elsewhere. Cyrillic names have no list: they are romanised by the
// tables in roman.go.
type name struct {
	native string
	latin  []string
	// weight makes some names more common than others.
	weight float64
}

// population is the names of one country of origin.
type population struct {
	country string
	// cyrillic names are romanised by table; the others pick a spelling
	// from their lists.
	cyrillic, ukrainian bool
	male, female        []name
	family              []name
	// feminine turns a family name into its feminine form (Russian).
	feminine func(string) string
	// patronymic forms a patronymic from the father's given name.
	patronymic func(father string, female bool) string
	// familyIsFather: the family name is the father's given name
	// (Eritrea, Somalia, often Afghanistan).
	familyIsFather bool
	// unknownDates is the share of people whose exact birth date is not
	// known (recorded as a year or as 1 January).
	unknownDates float64
}

func names(weight float64, list ...string) []name {
	out := make([]name, len(list))
	for i, s := range list {
		out[i] = name{native: s, weight: weight}
	}
	return out
}

// n is a name with its Latin spellings; the first weight is the most used.
func n(weight float64, native string, latin ...string) name {
	return name{native: native, latin: latin, weight: weight}
}

var populations = []*population{
	{
		country: "UA", cyrillic: true, ukrainian: true, unknownDates: 0.02,
		male: append(names(3, "Олександр", "Андрій", "Сергій", "Володимир", "Дмитро"),
			names(1, "Юрій", "Микола", "Іван", "Олег", "Віталій", "Богдан", "Тарас", "Максим", "Євген",
				"Михайло", "Василь", "Ігор", "Артем", "Денис", "Павло", "Ярослав", "Григорій")...),
		female: append(names(3, "Олена", "Ольга", "Наталія", "Тетяна", "Ірина"),
			names(1, "Юлія", "Оксана", "Світлана", "Марія", "Ганна", "Катерина", "Людмила", "Галина",
				"Вікторія", "Анастасія", "Надія", "Лариса", "Валентина", "Дарина", "Софія", "Єлизавета")...),
		family: append(names(3, "Шевченко", "Коваленко", "Бондаренко", "Ткаченко", "Мельник"),
			names(1, "Кравченко", "Олійник", "Шевчук", "Поліщук", "Бойко", "Ткачук", "Коваль", "Савченко",
				"Руденко", "Марченко", "Лисенко", "Мороз", "Петренко", "Клименко", "Павленко", "Кравчук",
				"Гриценко", "Захарченко", "Левченко", "Харченко", "Щербак", "Юрченко", "Гончаренко", "Вовк",
				"Яковенко", "Зінченко", "Гаврилюк", "Литвиненко", "Дорошенко", "Євтушенко")...),
		patronymic: ukrainianPatronymic,
	},
	{
		country: "RU", cyrillic: true, unknownDates: 0.02,
		male: append(names(3, "Александр", "Сергей", "Дмитрий", "Андрей", "Алексей"),
			names(1, "Максим", "Евгений", "Иван", "Михаил", "Владимир", "Николай", "Юрий", "Олег", "Павел",
				"Артём", "Денис", "Игорь", "Виктор")...),
		female: append(names(3, "Елена", "Ольга", "Наталья", "Татьяна", "Ирина"),
			names(1, "Юлия", "Светлана", "Мария", "Анна", "Екатерина", "Людмила", "Галина", "Виктория",
				"Анастасия", "Надежда", "Ксения", "Дарья")...),
		family: append(names(3, "Иванов", "Смирнов", "Кузнецов"),
			names(1, "Попов", "Васильев", "Петров", "Соколов", "Михайлов", "Новиков", "Фёдоров", "Морозов",
				"Волков", "Алексеев", "Лебедев", "Семёнов", "Егоров", "Павлов", "Козлов", "Степанов",
				"Николаев", "Орлов", "Андреев", "Макаров", "Никитин", "Захаров", "Зайцев", "Борисов",
				"Яковлев", "Григорьев", "Жуков", "Щукин", "Чернов")...),
		feminine:   func(s string) string { return s + "а" },
		patronymic: russianPatronymic,
	},
	{
		country: "SY", unknownDates: 0.15,
		male: []name{
			n(8, "محمد", "Mohammed", "Mohammad", "Muhammad", "Mohamed", "Mohamad", "Muhammed", "Mouhamed"),
			n(3, "أحمد", "Ahmed", "Ahmad", "Ahmet"),
			n(3, "علي", "Ali", "Aly"),
			n(2, "حسن", "Hassan", "Hasan"),
			n(2, "حسين", "Hussein", "Hussain", "Hossein", "Husein"),
			n(2, "عمر", "Omar", "Umar", "Omer"),
			n(1, "خالد", "Khaled", "Khalid", "Chaled"),
			n(1, "يوسف", "Youssef", "Yousef", "Yusuf", "Yussuf", "Jussuf"),
			n(1, "إبراهيم", "Ibrahim", "Ebrahim", "Brahim"),
			n(1, "محمود", "Mahmoud", "Mahmud", "Mahmood"),
			n(1, "عبد الله", "Abdullah", "Abdallah", "Abd Allah", "Abdulla"),
			n(1, "عبد الرحمن", "Abdulrahman", "Abdul Rahman", "Abdelrahman", "Abd al-Rahman", "Abdurrahman"),
			n(1, "مصطفى", "Mustafa", "Moustafa", "Mostafa"),
			n(1, "سامر", "Samer", "Sameer"),
			n(1, "وليد", "Walid", "Waleed", "Oualid"),
			n(1, "طارق", "Tarek", "Tariq", "Tarik"),
			n(1, "فادي", "Fadi", "Fady"),
			n(1, "كريم", "Karim", "Kareem"),
			n(1, "جمال", "Jamal", "Djamal", "Gamal"),
			n(1, "رامي", "Rami", "Ramy"),
			n(1, "باسل", "Basel", "Bassel", "Basil"),
		},
		female: []name{
			n(5, "فاطمة", "Fatima", "Fatma", "Fatimah", "Fatemeh"),
			n(2, "عائشة", "Aisha", "Aicha", "Ayesha", "Aysha"),
			n(2, "مريم", "Maryam", "Mariam", "Meryem", "Miriam"),
			n(1, "زينب", "Zainab", "Zeinab", "Zaynab"),
			n(1, "نور", "Nour", "Noor", "Nur"),
			n(1, "سارة", "Sara", "Sarah"),
			n(1, "ليلى", "Layla", "Leila", "Laila"),
			n(1, "رنا", "Rana"),
			n(1, "هبة", "Heba", "Hiba"),
			n(1, "آمنة", "Amina", "Amna", "Aminah"),
			n(1, "رهف", "Rahaf"),
			n(1, "دانة", "Dana", "Danah"),
			n(1, "هالة", "Hala"),
			n(1, "ياسمين", "Yasmin", "Yasmine", "Jasmin"),
			n(1, "لينا", "Lina", "Leena"),
		},
		family: []name{
			n(1, "الخطيب", "Al-Khatib", "Alkhatib", "El Khatib", "Khatib"),
			n(1, "الحسن", "Al-Hassan", "Alhassan", "El Hassan"),
			n(1, "المصري", "Al-Masri", "Almasri", "El Masry", "Masri"),
			n(1, "حداد", "Haddad", "Hadad"),
			n(1, "نصار", "Nassar", "Nasar"),
			n(1, "الشامي", "Al-Shami", "Alshami", "Shami", "El Chami"),
			n(1, "حمدان", "Hamdan"),
			n(1, "سليمان", "Suleiman", "Sulaiman", "Soliman", "Sleiman"),
			n(1, "قاسم", "Qasim", "Kassem", "Kasim", "Qassem"),
			n(1, "عثمان", "Othman", "Osman", "Uthman"),
			n(2, "الأحمد", "Al-Ahmad", "Alahmad", "Al Ahmed"),
			n(2, "العلي", "Al-Ali", "Alali", "Al Ali"),
			n(1, "الحلبي", "Al-Halabi", "Alhalabi", "Halabi"),
			n(1, "درويش", "Darwish", "Darwich", "Derwisch"),
			n(1, "عيسى", "Issa", "Eisa", "Isa"),
			n(1, "يونس", "Younes", "Younis", "Yunus"),
			n(1, "الحمصي", "Al-Homsi", "Alhomsi", "Homsi"),
			n(1, "النجار", "Al-Najjar", "Alnajjar", "Najjar", "El Naggar"),
			n(1, "الزعبي", "Al-Zoubi", "Alzoubi", "Zoubi", "Al-Zubi"),
			n(1, "السيد", "Al-Sayed", "Alsayed", "El Sayed", "Sayed"),
		},
	},
	{
		country: "AF", unknownDates: 0.4, familyIsFather: true,
		male: []name{
			n(6, "محمد", "Mohammad", "Mohammed", "Muhammad", "Mohamad"),
			n(3, "احمد", "Ahmad", "Ahmed"),
			n(2, "علی", "Ali"),
			n(1, "نجیب", "Najib", "Najeeb", "Nadschib"),
			n(1, "فرید", "Farid", "Fareed"),
			n(1, "رحیم", "Rahim", "Raheem"),
			n(1, "جاوید", "Javid", "Jawid", "Javed"),
			n(1, "حمید", "Hamid", "Hameed"),
			n(1, "شفیق", "Shafiq", "Shafik", "Schafik"),
			n(1, "ذبیح الله", "Zabihullah", "Zabiullah", "Zabih Ullah"),
			n(1, "عبدالله", "Abdullah", "Abdulla"),
			n(1, "مسعود", "Masoud", "Masood", "Massoud"),
			n(1, "نوید", "Navid", "Naweed", "Nawid"),
		},
		female: []name{
			n(2, "زهرا", "Zahra", "Zehra"),
			n(1, "فرشته", "Fereshta", "Freshta", "Fereshteh"),
			n(2, "مریم", "Maryam", "Mariam"),
			n(1, "پروین", "Parwin", "Parvin"),
			n(1, "شکیلا", "Shakila", "Shakeela", "Schakila"),
			n(1, "ملالی", "Malalai", "Malalay"),
			n(1, "نادیه", "Nadia", "Nadiya"),
			n(1, "سمیرا", "Samira", "Sameera"),
			n(1, "لیلا", "Laila", "Leila", "Lyla"),
			n(1, "نرگس", "Nargis", "Narges"),
		},
		family: []name{
			n(2, "احمدی", "Ahmadi", "Ahmady"),
			n(2, "محمدی", "Mohammadi", "Muhammadi", "Mohamadi"),
			n(1, "رحیمی", "Rahimi", "Rahimy"),
			n(1, "حیدری", "Haidari", "Heydari", "Haydari"),
			n(1, "نوری", "Noori", "Nouri", "Nuri"),
			n(1, "کریمی", "Karimi", "Kareemi"),
			n(1, "هاشمی", "Hashimi", "Hashemi"),
			n(1, "صدیقی", "Sediqi", "Siddiqi", "Seddiqi"),
			n(1, "نظری", "Nazari"),
			n(1, "عزیزی", "Azizi"),
			n(1, "حسینی", "Hosseini", "Husseini", "Hussaini"),
			n(1, "یوسفی", "Yousufi", "Yusufi", "Jussufi"),
		},
	},
	{
		country: "ER", unknownDates: 0.45, familyIsFather: true,
		male: []name{
			n(2, "ተስፋይ", "Tesfay", "Tesfai", "Tesfaye"),
			n(2, "ዮሃንስ", "Yohannes", "Yohanes", "Johannes"),
			n(1, "ዳዊት", "Dawit", "Dawet"),
			n(1, "ኣማኑኤል", "Amanuel", "Emanuel", "Amanuael"),
			n(1, "ሚካኤል", "Mikael", "Michael", "Mikiel"),
			n(1, "ብርሃነ", "Berhane", "Birhane", "Brhane"),
			n(1, "ክብሮም", "Kibrom", "Kbrom", "Kebrom"),
			n(1, "ሃብተ", "Habte", "Habtay"),
			n(1, "ተኽለ", "Tekle", "Tekleh"),
			n(1, "ሰመረ", "Semere", "Semre"),
			n(1, "ኣብርሃም", "Abraham", "Abreham"),
			n(1, "ሰሎሞን", "Solomon", "Salomon"),
			n(1, "ሃይለ", "Haile", "Hayle"),
			n(1, "ኪዳነ", "Kidane", "Kidana"),
			n(1, "መብራህቱ", "Mebrahtu", "Mebrahtom", "Mebratu"),
			n(1, "ገብረመድህን", "Gebremedhin", "Gebre Medhin", "Ghebremedhin", "Gebremedhn"),
			n(1, "ገብረማርያም", "Gebremariam", "Gebre Mariam", "Ghebremariam", "Gebremaryam"),
			n(1, "ወልደማርያም", "Woldemariam", "Weldemariam", "Welde Mariam"),
			n(1, "ተስፋጽዮን", "Tesfazion", "Tesfatsion", "Tesfa Tsion"),
			n(1, "ገብረሂወት", "Gebrehiwet", "Gebre Hiwet", "Ghebrehiwet"),
		},
		female: []name{
			n(2, "ሰላም", "Selam", "Salam"),
			n(1, "ሉዋም", "Luwam", "Lwam"),
			n(1, "ሳባ", "Saba"),
			n(1, "ኤልሳ", "Elsa"),
			n(1, "ሰናይት", "Senait", "Senayt", "Sennait"),
			n(1, "ፍረወይኒ", "Freweini", "Frewoini", "Fiorweini"),
			n(1, "ሄለን", "Helen", "Hellen"),
			n(1, "ሩታ", "Ruta"),
			n(1, "ትርሓስ", "Tirhas", "Trhas"),
			n(1, "ሚሊኤን", "Milien", "Milyen"),
			n(1, "ዳኒኤላ", "Daniela"),
			n(1, "ኣስመረት", "Asmeret", "Asmerat"),
		},
	},
	{
		country: "SO", unknownDates: 0.4, familyIsFather: true,
		male: []name{
			n(6, "Maxamed", "Mohamed", "Mohammed", "Mahamed", "Mohamud"),
			n(2, "Cabdi", "Abdi"),
			n(2, "Cali", "Ali"),
			n(2, "Xasan", "Hassan", "Hasan"),
			n(2, "Axmed", "Ahmed", "Ahmad"),
			n(1, "Cumar", "Omar", "Umar"),
			n(1, "Yuusuf", "Yusuf", "Yousuf"),
			n(1, "Ibraahim", "Ibrahim"),
			n(1, "Cabdullaahi", "Abdullahi", "Abdulahi"),
			n(1, "Faarax", "Farah", "Farh"),
			n(1, "Xuseen", "Hussein", "Hussen"),
			n(1, "Aadan", "Adan", "Aden"),
			n(1, "Jaamac", "Jama", "Jamma"),
			n(1, "Warsame", "Warsame", "Warsama"),
		},
		female: []name{
			n(3, "Faadumo", "Fadumo", "Faduma", "Fatuma"),
			n(2, "Caasha", "Asha", "Aisha"),
			n(1, "Maryan", "Maryan", "Mariam"),
			n(1, "Xaliimo", "Halimo", "Halima"),
			n(1, "Hodan", "Hodan"),
			n(1, "Sahra", "Sahra", "Sahro", "Zahra"),
			n(1, "Deeqa", "Deqa", "Deka"),
			n(1, "Ayaan", "Ayan"),
			n(1, "Nimco", "Nimo", "Nimoh"),
			n(1, "Hibo", "Hibo"),
			n(1, "Ifraax", "Ifrah", "Ifra"),
		},
	},
	{
		country: "DE", unknownDates: 0.005,
		male: append(names(2, "Thomas", "Michael", "Andreas", "Stefan"),
			names(1, "Lukas", "Jonas", "Felix", "Jan", "Tobias", "Christian", "Markus", "Daniel", "Alexander")...),
		female: append(names(2, "Anna", "Maria", "Julia", "Katharina"),
			names(1, "Laura", "Lena", "Sarah", "Sophie", "Hannah", "Christina", "Sabine", "Petra", "Elena")...),
		family: append(names(3, "Müller", "Schmidt", "Schneider"),
			names(1, "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann", "Schäfer", "Koch",
				"Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Zimmermann", "Krüger")...),
	},
}

// ukrainianPatronymic forms Олександрович / Олександрівна, Сергійович /
// Сергіївна, Дмитрович / Дмитрівна.
func ukrainianPatronymic(father string, female bool) string {
	r := []rune(father)
	last := r[len(r)-1]
	base := string(r)
	switch last {
	case 'о':
		base = string(r[:len(r)-1])
	case 'й':
		if female {
			return string(r[:len(r)-1]) + "ївна"
		}
		return base + "ович"
	}
	if female {
		return base + "івна"
	}
	return base + "ович"
}

var russianIrregular = map[string][2]string{
	"Павел":  {"Павлович", "Павловна"},
	"Михаил": {"Михайлович", "Михайловна"},
	"Артём":  {"Артёмович", "Артёмовна"},
}

// russianPatronymic forms Александрович / Александровна, Сергеевич /
// Сергеевна.
func russianPatronymic(father string, female bool) string {
	if p, ok := russianIrregular[father]; ok {
		if female {
			return p[1]
		}
		return p[0]
	}
	r := []rune(father)
	if r[len(r)-1] == 'й' {
		base := string(r[:len(r)-1])
		if female {
			return base + "евна"
		}
		return base + "евич"
	}
	if female {
		return father + "овна"
	}
	return father + "ович"
}
