-- Personal data, education and the directories of the profile service.

-- Regions of residence, keyed by ISO 3166-2:KZ: 17 oblasts (Abai, Jetisu and Ulytau since
-- June 2022) and the cities of republican significance Astana, Almaty and Shymkent.
CREATE TABLE regions (
    code     text PRIMARY KEY CHECK (code ~ '^KZ-[0-9]{2}$'),
    name_kk  text NOT NULL,
    name_ru  text NOT NULL,
    name_en  text NOT NULL,
    position integer NOT NULL
);

INSERT INTO regions (code, name_kk, name_ru, name_en, position) VALUES
('KZ-71', 'Астана қаласы', 'г. Астана', 'Astana', 1),
('KZ-75', 'Алматы қаласы', 'г. Алматы', 'Almaty', 2),
('KZ-79', 'Шымкент қаласы', 'г. Шымкент', 'Shymkent', 3),
('KZ-10', 'Абай облысы', 'Абайская область', 'Abai Region', 4),
('KZ-11', 'Ақмола облысы', 'Акмолинская область', 'Akmola Region', 5),
('KZ-15', 'Ақтөбе облысы', 'Актюбинская область', 'Aktobe Region', 6),
('KZ-19', 'Алматы облысы', 'Алматинская область', 'Almaty Region', 7),
('KZ-23', 'Атырау облысы', 'Атырауская область', 'Atyrau Region', 8),
('KZ-27', 'Батыс Қазақстан облысы', 'Западно-Казахстанская область', 'West Kazakhstan Region', 9),
('KZ-31', 'Жамбыл облысы', 'Жамбылская область', 'Jambyl Region', 10),
('KZ-33', 'Жетісу облысы', 'Область Жетісу', 'Jetisu Region', 11),
('KZ-35', 'Қарағанды облысы', 'Карагандинская область', 'Karaganda Region', 12),
('KZ-39', 'Қостанай облысы', 'Костанайская область', 'Kostanay Region', 13),
('KZ-43', 'Қызылорда облысы', 'Кызылординская область', 'Kyzylorda Region', 14),
('KZ-47', 'Маңғыстау облысы', 'Мангистауская область', 'Mangystau Region', 15),
('KZ-55', 'Павлодар облысы', 'Павлодарская область', 'Pavlodar Region', 16),
('KZ-59', 'Солтүстік Қазақстан облысы', 'Северо-Казахстанская область', 'North Kazakhstan Region', 17),
('KZ-61', 'Түркістан облысы', 'Туркестанская область', 'Turkistan Region', 18),
('KZ-62', 'Ұлытау облысы', 'Область Улытау', 'Ulytau Region', 19),
('KZ-63', 'Шығыс Қазақстан облысы', 'Восточно-Казахстанская область', 'East Kazakhstan Region', 20);

-- Applicant categories («Контингент») and the kind of institution each studied at.
CREATE TABLE contingents (
    code             text PRIMARY KEY,
    name_kk          text NOT NULL,
    name_ru          text NOT NULL,
    name_en          text NOT NULL,
    institution_kind text NOT NULL CHECK (institution_kind IN ('university', 'college', 'school')),
    position         integer NOT NULL
);

INSERT INTO contingents (code, name_kk, name_ru, name_en, institution_kind, position) VALUES
('bachelor', 'Бакалавр', 'Бакалавр', 'Bachelor''s graduate', 'university', 1),
('master', 'Магистр', 'Магистр', 'Master''s graduate', 'university', 2),
('university_student', 'ЖОО студенті', 'Студент вуза', 'University student', 'university', 3),
('college_graduate', 'Колледж түлегі', 'Выпускник колледжа', 'College graduate', 'college', 4),
('school_graduate', 'Мектеп түлегі', 'Выпускник школы', 'School graduate', 'school', 5);

-- Institutions. `search` is the three names folded by the service (lower case, NFC, ё → е),
-- so a search matches any part of any name the same way whatever the database's locale.
CREATE TABLE institutions (
    id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{1,63}$'),
    region_code text NOT NULL REFERENCES regions (code),
    kind        text NOT NULL CHECK (kind IN ('university', 'college', 'school')),
    name_kk     text NOT NULL CHECK (length(name_kk) BETWEEN 2 AND 300),
    name_ru     text NOT NULL CHECK (length(name_ru) BETWEEN 2 AND 300),
    name_en     text NOT NULL CHECK (length(name_en) BETWEEN 2 AND 300),
    search      text NOT NULL,
    archived_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX institutions_region_idx ON institutions (region_code);

-- The seed: state, national and regional universities of every region. `search` is filled
-- below with the same folding the service applies (lower() is exact for these names under
-- any UTF-8 locale, and none of them has ё).
INSERT INTO institutions (id, region_code, kind, name_kk, name_ru, name_en, search) VALUES
('kaznu', 'KZ-75', 'university', 'Әл-Фараби атындағы Қазақ ұлттық университеті', 'Казахский национальный университет имени аль-Фараби', 'Al-Farabi Kazakh National University', ''),
('satbayev', 'KZ-75', 'university', 'Қ. И. Сәтбаев атындағы Қазақ ұлттық техникалық зерттеу университеті', 'Казахский национальный исследовательский технический университет имени К. И. Сатпаева', 'Satbayev University', ''),
('kaznpu', 'KZ-75', 'university', 'Абай атындағы Қазақ ұлттық педагогикалық университеті', 'Казахский национальный педагогический университет имени Абая', 'Abai Kazakh National Pedagogical University', ''),
('kaznmu', 'KZ-75', 'university', 'С. Ж. Асфендияров атындағы Қазақ ұлттық медицина университеті', 'Казахский национальный медицинский университет имени С. Д. Асфендиярова', 'Asfendiyarov Kazakh National Medical University', ''),
('kaznaru', 'KZ-75', 'university', 'Қазақ ұлттық аграрлық зерттеу университеті', 'Казахский национальный аграрный исследовательский университет', 'Kazakh National Agrarian Research University', ''),
('kimep', 'KZ-75', 'university', 'КИМЭП университеті', 'Университет КИМЭП', 'KIMEP University', ''),
('kbtu', 'KZ-75', 'university', 'Қазақстан-Британ техникалық университеті', 'Казахстанско-Британский технический университет', 'Kazakh-British Technical University', ''),
('sdu', 'KZ-19', 'university', 'Сүлейман Демирел атындағы университет', 'Университет имени Сулеймана Демиреля', 'Suleyman Demirel University', ''),
('enu', 'KZ-71', 'university', 'Л. Н. Гумилев атындағы Еуразия ұлттық университеті', 'Евразийский национальный университет имени Л. Н. Гумилева', 'L. N. Gumilyov Eurasian National University', ''),
('nu', 'KZ-71', 'university', 'Назарбаев Университет', 'Назарбаев Университет', 'Nazarbayev University', ''),
('katru', 'KZ-71', 'university', 'С. Сейфуллин атындағы Қазақ агротехникалық зерттеу университеті', 'Казахский агротехнический исследовательский университет имени С. Сейфуллина', 'S. Seifullin Kazakh Agrotechnical Research University', ''),
('amu', 'KZ-71', 'university', 'Астана медицина университеті', 'Медицинский университет Астана', 'Astana Medical University', ''),
('auezov', 'KZ-79', 'university', 'М. Әуезов атындағы Оңтүстік Қазақстан университеті', 'Южно-Казахстанский университет имени М. Ауэзова', 'M. Auezov South Kazakhstan University', ''),
('shakarim', 'KZ-10', 'university', 'Семей қаласының Шәкәрім атындағы университеті', 'Университет имени Шакарима города Семей', 'Shakarim University of Semey', ''),
('smu', 'KZ-10', 'university', 'Семей медицина университеті', 'Медицинский университет Семей', 'Semey Medical University', ''),
('kokshetau', 'KZ-11', 'university', 'Ш. Уәлиханов атындағы Көкшетау университеті', 'Кокшетауский университет имени Ш. Уалиханова', 'Sh. Ualikhanov Kokshetau University', ''),
('arsu', 'KZ-15', 'university', 'Қ. Жұбанов атындағы Ақтөбе өңірлік университеті', 'Актюбинский региональный университет имени К. Жубанова', 'K. Zhubanov Aktobe Regional University', ''),
('zkmu', 'KZ-15', 'university', 'Марат Оспанов атындағы Батыс Қазақстан медицина университеті', 'Западно-Казахстанский медицинский университет имени Марата Оспанова', 'Marat Ospanov West Kazakhstan Medical University', ''),
('atyrau', 'KZ-23', 'university', 'Х. Досмұхамедов атындағы Атырау университеті', 'Атырауский университет имени Х. Досмухамедова', 'Kh. Dosmukhamedov Atyrau University', ''),
('wku', 'KZ-27', 'university', 'М. Өтемісов атындағы Батыс Қазақстан университеті', 'Западно-Казахстанский университет имени М. Утемисова', 'M. Utemisov West Kazakhstan University', ''),
('dulaty', 'KZ-31', 'university', 'М. Х. Дулати атындағы Тараз өңірлік университеті', 'Таразский региональный университет имени М. Х. Дулати', 'M. Kh. Dulaty Taraz Regional University', ''),
('zhetysu', 'KZ-33', 'university', 'Ілияс Жансүгіров атындағы Жетісу университеті', 'Жетысуский университет имени Ильяса Жансугурова', 'Ilyas Zhansugurov Zhetysu University', ''),
('buketov', 'KZ-35', 'university', 'Академик Е. А. Бөкетов атындағы Қарағанды университеті', 'Карагандинский университет имени академика Е. А. Букетова', 'Karaganda Buketov University', ''),
('kstu', 'KZ-35', 'university', 'Әбілқас Сағынов атындағы Қарағанды техникалық университеті', 'Карагандинский технический университет имени Абылкаса Сагинова', 'Abylkas Saginov Karaganda Technical University', ''),
('baitursynov', 'KZ-39', 'university', 'Ахмет Байтұрсынұлы атындағы Қостанай өңірлік университеті', 'Костанайский региональный университет имени Ахмет Байтұрсынұлы', 'Akhmet Baitursynuly Kostanay Regional University', ''),
('korkyt', 'KZ-43', 'university', 'Қорқыт Ата атындағы Қызылорда университеті', 'Кызылординский университет имени Коркыт Ата', 'Korkyt Ata Kyzylorda University', ''),
('yessenov', 'KZ-47', 'university', 'Ш. Есенов атындағы Каспий технологиялар және инжиниринг университеті', 'Каспийский университет технологий и инжиниринга имени Ш. Есенова', 'Sh. Yessenov Caspian University of Technology and Engineering', ''),
('toraighyrov', 'KZ-55', 'university', 'Торайғыров университеті', 'Торайгыров университет', 'Toraighyrov University', ''),
('kozybayev', 'KZ-59', 'university', 'М. Қозыбаев атындағы Солтүстік Қазақстан университеті', 'Северо-Казахстанский университет имени М. Козыбаева', 'M. Kozybayev North Kazakhstan University', ''),
('yasawi', 'KZ-61', 'university', 'Қожа Ахмет Ясауи атындағы Халықаралық қазақ-түрік университеті', 'Международный казахско-турецкий университет имени Ходжи Ахмеда Ясави', 'Khoja Akhmet Yassawi International Kazakh-Turkish University', ''),
('zhezu', 'KZ-62', 'university', 'Ө. А. Байқоңыров атындағы Жезқазған университеті', 'Жезказганский университет имени О. А. Байконурова', 'O. A. Baikonurov Zhezkazgan University', ''),
('amanzholov', 'KZ-63', 'university', 'Сәрсен Аманжолов атындағы Шығыс Қазақстан университеті', 'Восточно-Казахстанский университет имени Сарсена Аманжолова', 'Sarsen Amanzholov East Kazakhstan University', ''),
('ektu', 'KZ-63', 'university', 'Д. Серікбаев атындағы Шығыс Қазақстан техникалық университеті', 'Восточно-Казахстанский технический университет имени Д. Серикбаева', 'D. Serikbayev East Kazakhstan Technical University', '');
UPDATE institutions SET search = lower(name_kk || ' ' || name_ru || ' ' || name_en);

-- One row per applicant; columns fill as the steps are done.
CREATE TABLE profiles (
    account_id      uuid PRIMARY KEY,
    surname         text CHECK (length(surname) BETWEEN 1 AND 100),
    given_name      text CHECK (length(given_name) BETWEEN 1 AND 100),
    patronymic      text CHECK (length(patronymic) BETWEEN 1 AND 100),
    sex             text CHECK (sex IN ('male', 'female')),
    birth_date      date,
    region_code     text REFERENCES regions (code),
    -- E.164.
    mobile_phone    text CHECK (mobile_phone ~ '^\+[1-9][0-9]{6,14}$'),
    contingent_code text REFERENCES contingents (code),
    institution_id  text REFERENCES institutions (id),
    locked_at       timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((surname IS NULL) = (given_name IS NULL)),
    CHECK ((sex IS NULL) = (birth_date IS NULL) AND (sex IS NULL) = (region_code IS NULL)
           AND (sex IS NULL) = (mobile_phone IS NULL)),
    CHECK ((contingent_code IS NULL) = (institution_id IS NULL))
);
