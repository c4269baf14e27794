//! Messages in kk, ru and en for every stable error code, chosen by `Accept-Language`
//! (ru when nothing fits). Codes are the contract; messages are for people.

/// A supported language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Ru,
    Kk,
    En,
}

impl Lang {
    pub fn tag(self) -> &'static str {
        match self {
            Self::Ru => "ru",
            Self::Kk => "kk",
            Self::En => "en",
        }
    }

    /// The best supported language of an `Accept-Language` header, honouring q-values.
    pub fn from_header(header: Option<&str>) -> Self {
        let Some(header) = header else {
            return Self::Ru;
        };
        let mut best: Option<(f32, Self)> = None;
        for part in header.split(',') {
            let mut pieces = part.trim().split(';');
            let tag = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = pieces
                .find_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.parse::<f32>().ok())
                })
                .unwrap_or(1.0);
            let lang = match tag.split('-').next().unwrap_or("") {
                "ru" => Self::Ru,
                "kk" => Self::Kk,
                "en" => Self::En,
                _ => continue,
            };
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.map_or(Self::Ru, |(_, lang)| lang)
    }

    pub fn pick_owned(self, ru: &str, kk: &str, en: &str) -> String {
        match self {
            Self::Ru => ru,
            Self::Kk => kk,
            Self::En => en,
        }
        .to_owned()
    }

    pub fn pick(self, ru: &'static str, kk: &'static str, en: &'static str) -> &'static str {
        match self {
            Self::Ru => ru,
            Self::Kk => kk,
            Self::En => en,
        }
    }
}

/// One stable error code and what people read for it.
pub struct Entry {
    pub code: &'static str,
    /// The HTTP status it comes with (or where it shows, for one that is not an error of
    /// its own), as docs/errors.md prints it.
    pub status: &'static str,
    pub ru: &'static str,
    pub kk: &'static str,
    pub en: &'static str,
}

/// Every error code the API answers with, once, with its messages. `docs/errors.md` lists the
/// same codes (a test keeps the two in step).
pub const CATALOGUE: &[Entry] = &[
    Entry {
        code: "malformed_request",
        status: "400",
        ru: "Некорректный запрос.",
        kk: "Сұраным дұрыс емес.",
        en: "The request is malformed.",
    },
    Entry {
        code: "body_too_large",
        status: "413",
        ru: "Слишком большой запрос.",
        kk: "Сұраным тым үлкен.",
        en: "The request body is too large.",
    },
    Entry {
        code: "not_found",
        status: "404",
        ru: "Не найдено.",
        kk: "Табылмады.",
        en: "Not found.",
    },
    Entry {
        code: "validation_failed",
        status: "422",
        ru: "Проверьте введённые данные.",
        kk: "Енгізілген деректерді тексеріңіз.",
        en: "Check the data you entered.",
    },
    Entry {
        code: "terms_not_accepted",
        status: "422",
        ru: "Необходимо принять Условия использования.",
        kk: "Пайдалану шарттарын қабылдау қажет.",
        en: "You must accept the terms of use.",
    },
    Entry {
        code: "terms_version_outdated",
        status: "422",
        ru: "Условия использования обновились, ознакомьтесь с новой версией.",
        kk: "Пайдалану шарттары жаңартылды, жаңа нұсқасымен танысыңыз.",
        en: "The terms of use have changed; please read the new version.",
    },
    Entry {
        code: "invalid_citizenship",
        status: "422",
        ru: "Выберите гражданство из списка.",
        kk: "Азаматтықты тізімнен таңдаңыз.",
        en: "Choose a citizenship from the list.",
    },
    Entry {
        code: "invalid_iin",
        status: "422",
        ru: "ИИН введён неверно: проверьте 12 цифр.",
        kk: "ЖСН қате енгізілген: 12 цифрды тексеріңіз.",
        en: "The IIN is not valid: check the 12 digits.",
    },
    Entry {
        code: "iin_required",
        status: "422",
        ru: "Граждане Казахстана указывают ИИН.",
        kk: "Қазақстан азаматтары ЖСН көрсетеді.",
        en: "Citizens of Kazakhstan give their IIN.",
    },
    Entry {
        code: "identifier_required",
        status: "422",
        ru: "Укажите ИИН или номер паспорта.",
        kk: "ЖСН немесе паспорт нөмірін көрсетіңіз.",
        en: "Give your IIN or passport number.",
    },
    Entry {
        code: "invalid_passport_number",
        status: "422",
        ru: "Номер паспорта введён неверно.",
        kk: "Паспорт нөмірі қате енгізілген.",
        en: "The passport number is not valid.",
    },
    Entry {
        code: "invalid_email",
        status: "422",
        ru: "Адрес электронной почты введён неверно.",
        kk: "Электрондық пошта мекенжайы қате.",
        en: "The email address is not valid.",
    },
    Entry {
        code: "invalid_code",
        status: "422",
        ru: "Неверный код. Проверьте письмо и попробуйте ещё раз.",
        kk: "Код қате. Хатты тексеріп, қайталап көріңіз.",
        en: "Wrong code. Check the letter and try again.",
    },
    Entry {
        code: "invalid_code_format",
        status: "422",
        ru: "Код состоит из 6 цифр.",
        kk: "Код 6 цифрдан тұрады.",
        en: "The code is 6 digits.",
    },
    Entry {
        code: "code_expired",
        status: "422",
        ru: "Срок действия кода истёк. Запросите новый код.",
        kk: "Кодтың мерзімі өтті. Жаңа код сұраңыз.",
        en: "The code has expired. Request a new one.",
    },
    Entry {
        code: "code_attempts_exhausted",
        status: "422",
        ru: "Слишком много неверных попыток. Запросите новый код.",
        kk: "Қате әрекеттер тым көп. Жаңа код сұраңыз.",
        en: "Too many wrong attempts. Request a new code.",
    },
    Entry {
        code: "resend_too_early",
        status: "429",
        ru: "Новый код можно будет запросить чуть позже. Проверьте папку «Спам».",
        kk: "Жаңа кодты сәл кейінірек сұрауға болады. «Спам» қалтасын тексеріңіз.",
        en: "You can request a new code a little later. Check your spam folder.",
    },
    Entry {
        code: "send_budget_exhausted",
        status: "429",
        ru: "Слишком много запросов кода. Попробуйте позже.",
        kk: "Код сұраулары тым көп. Кейінірек көріңіз.",
        en: "Too many code requests. Try again later.",
    },
    Entry {
        code: "password_mismatch",
        status: "422",
        ru: "Пароли не совпадают.",
        kk: "Құпиясөздер сәйкес емес.",
        en: "The passwords do not match.",
    },
    Entry {
        code: "weak_password",
        status: "422",
        ru: "Пароль слишком простой: не менее 8 символов, без ИИН и имени почты, не из списка распространённых.",
        kk: "Құпиясөз тым қарапайым: кемінде 8 таңба, ЖСН мен пошта атауынсыз, кең таралғандардан емес.",
        en: "The password is too weak: at least 8 characters, not containing your IIN or email name, not a common one.",
    },
    Entry {
        code: "invalid_email_proof",
        status: "422",
        ru: "Подтверждение почты недействительно. Подтвердите почту ещё раз.",
        kk: "Поштаны растау жарамсыз. Поштаны қайта растаңыз.",
        en: "The email confirmation is no longer valid. Confirm the email again.",
    },
    Entry {
        code: "already_registered",
        status: "409",
        ru: "Учётная запись с этим ИИН, паспортом или почтой уже существует. Если она ваша, войдите или восстановите пароль («Забыли пароль»). Если ваш ИИН зарегистрировал кто-то другой, обратитесь в службу поддержки с удостоверением личности. Мы отправили письмо с подробностями на эту почту.",
        kk: "Бұл ЖСН, паспорт немесе пошта бойынша тіркелгі бұрыннан бар. Егер ол сіздікі болса, кіріңіз немесе құпиясөзді қалпына келтіріңіз («Құпиясөзді ұмыттыңыз ба?»). Егер сіздің ЖСН-ды басқа біреу тіркеген болса, жеке куәлігіңізбен қолдау қызметіне хабарласыңыз. Толығырақ хатты осы поштаға жібердік.",
        en: "An account with this IIN, passport number or email already exists. If it is yours, log in or recover the password (“Forgot password”). If someone else registered your IIN, contact the support desk with your ID document. We sent the details to this email.",
    },
    Entry {
        code: "flow_expired",
        status: "410",
        ru: "Время регистрации истекло. Начните заново.",
        kk: "Тіркеу уақыты өтті. Қайтадан бастаңыз.",
        en: "The registration has expired. Please start again.",
    },
    Entry {
        code: "step_out_of_order",
        status: "409",
        ru: "Сначала завершите предыдущий шаг.",
        kk: "Алдымен алдыңғы қадамды аяқтаңыз.",
        en: "Complete the previous step first.",
    },
    Entry {
        code: "unsupported_media_type",
        status: "415",
        ru: "Загрузите фотографию в формате JPEG или PNG.",
        kk: "Суретті JPEG немесе PNG пішімінде жүктеңіз.",
        en: "Upload the photo as JPEG or PNG.",
    },
    Entry {
        code: "photo_unsupported_type",
        status: "422",
        ru: "Это не фотография JPEG или PNG. Переснимите.",
        kk: "Бұл JPEG немесе PNG суреті емес. Қайта түсіріңіз.",
        en: "This is not a JPEG or PNG photo. Retake it.",
    },
    Entry {
        code: "photo_undecodable",
        status: "422",
        ru: "Фотографию не удалось прочитать (файл повреждён). Переснимите.",
        kk: "Суретті оқу мүмкін болмады (файл бүлінген). Қайта түсіріңіз.",
        en: "The photo cannot be read (the file is damaged). Retake it.",
    },
    Entry {
        code: "photo_too_small",
        status: "422",
        ru: "Фотография слишком маленькая. Переснимите камерой с лучшим разрешением.",
        kk: "Сурет тым кішкентай. Жақсырақ ажыратымдылықпен қайта түсіріңіз.",
        en: "The photo is too small. Retake it with a better camera resolution.",
    },
    Entry {
        code: "photo_blurred",
        status: "422",
        ru: "Фотография размыта. Держите камеру неподвижно и переснимите.",
        kk: "Сурет бұлыңғыр. Камераны қозғалтпай, қайта түсіріңіз.",
        en: "The photo is blurred. Hold the camera still and retake it.",
    },
    Entry {
        code: "photo_too_dark",
        status: "422",
        ru: "Фотография слишком тёмная. Включите свет и переснимите.",
        kk: "Сурет тым қараңғы. Жарықты қосып, қайта түсіріңіз.",
        en: "The photo is too dark. Turn on a light and retake it.",
    },
    Entry {
        code: "photo_too_bright",
        status: "422",
        ru: "Фотография засвечена. Отойдите от яркого света и переснимите.",
        kk: "Сурет тым жарық. Жарық көзінен алыстап, қайта түсіріңіз.",
        en: "The photo is too bright. Move away from the bright light and retake it.",
    },
    Entry {
        code: "photo_no_face",
        status: "422",
        ru: "На фотографии не найдено лицо. Поместите лицо в овал (на документе — фото владельца) и переснимите.",
        kk: "Суретте бет табылмады. Бетіңізді сопақ ішіне орналастырып (құжатта — иесінің суреті), қайта түсіріңіз.",
        en: "No face was found. Place your face in the oval (on the document, the holder's photo) and retake it.",
    },
    Entry {
        code: "photo_several_faces",
        status: "422",
        ru: "В кадре несколько лиц. Снимите только себя.",
        kk: "Кадрда бірнеше бет бар. Тек өзіңізді түсіріңіз.",
        en: "There is more than one face. Take a photo of yourself only.",
    },
    Entry {
        code: "photo_face_too_small",
        status: "422",
        ru: "Лицо слишком маленькое. Подойдите ближе к камере.",
        kk: "Бет тым кішкентай. Камераға жақынырақ келіңіз.",
        en: "The face is too small. Come closer to the camera.",
    },
    Entry {
        code: "photo_face_off_centre",
        status: "422",
        ru: "Лицо не в центре. Поместите его в овал и переснимите.",
        kk: "Бет ортада емес. Оны сопақ ішіне орналастырып, қайта түсіріңіз.",
        en: "The face is not in the centre. Place it in the oval and retake it.",
    },
    Entry {
        code: "invalid_document_type",
        status: "422",
        ru: "Выберите документ: удостоверение личности или паспорт.",
        kk: "Құжатты таңдаңыз: жеке куәлік немесе паспорт.",
        en: "Choose the document: an ID card or a passport.",
    },
    Entry {
        code: "document_check_pending",
        status: "409 (completion), onboarding",
        ru: "Документ проверяется, это займёт несколько секунд.",
        kk: "Құжат тексерілуде, бұл бірнеше секунд алады.",
        en: "The document is being checked; this takes a few seconds.",
    },
    Entry {
        code: "document_mrz_unreadable",
        status: "409 (completion), onboarding",
        ru: "Сфотографируйте оборотную сторону целиком, без бликов.",
        kk: "Куәліктің артқы жағын толығымен, жылтырсыз суретке түсіріңіз.",
        en: "Photograph the whole back of the card, without glare.",
    },
    Entry {
        code: "document_mrz_unreadable.passport",
        status: "409 (completion), onboarding",
        ru: "Сфотографируйте страницу с фотографией целиком, вместе с двумя строками внизу, без бликов.",
        kk: "Суреті бар бетті төмендегі екі жолымен бірге толығымен, жылтырсыз суретке түсіріңіз.",
        en: "Photograph the whole photo page, with the two lines at its foot, without glare.",
    },
    Entry {
        code: "document_expired",
        status: "409 (completion), onboarding",
        ru: "Срок действия документа истекает раньше экзамена. Сфотографируйте действующий документ.",
        kk: "Құжаттың жарамдылық мерзімі емтиханға дейін аяқталады. Жарамды құжатты суретке түсіріңіз.",
        en: "The document expires before the exam. Photograph a valid document.",
    },
    Entry {
        code: "document_review",
        status: "409 (completion), onboarding",
        ru: "Данные документа не совпали с указанными при регистрации. Документ проверит сотрудник центра, результат появится здесь.",
        kk: "Құжат деректері тіркеу кезінде көрсетілгендермен сәйкес келмеді. Құжатты орталық қызметкері тексереді, нәтижесі осында көрсетіледі.",
        en: "The document's data did not match what you registered with. A member of the centre's staff will check it; the result will appear here.",
    },
    Entry {
        code: "document_retake_requested",
        status: "409 (completion), onboarding",
        ru: "Сотрудник центра просит сфотографировать документ заново.",
        kk: "Орталық қызметкері құжатты қайта суретке түсіруді сұрайды.",
        en: "The centre's staff ask you to photograph the document again.",
    },
    Entry {
        code: "document_rejected",
        status: "409 (completion), onboarding",
        ru: "Документ не принят. Обратитесь в службу поддержки центра.",
        kk: "Құжат қабылданбады. Орталықтың қолдау қызметіне хабарласыңыз.",
        en: "The document was not accepted. Contact the centre's support desk.",
    },
    Entry {
        code: "document_back_not_needed",
        status: "422",
        ru: "Для паспорта нужна только страница с фотографией, оборотная сторона не нужна.",
        kk: "Паспорт үшін тек суреті бар беті керек, артқы жағы қажет емес.",
        en: "A passport needs only its photo page; there is no back side to upload.",
    },
    Entry {
        code: "name_required",
        status: "422",
        ru: "Укажите фамилию и имя.",
        kk: "Тегі мен атыңызды көрсетіңіз.",
        en: "Enter your surname and given name.",
    },
    Entry {
        code: "name_invalid_characters",
        status: "422",
        ru: "Используйте только буквы, дефис, апостроф и пробелы между словами.",
        kk: "Тек әріптерді, дефисті, апострофты және сөз арасындағы бос орынды қолданыңыз.",
        en: "Use letters only, with a hyphen, apostrophe or space between words.",
    },
    Entry {
        code: "name_too_long",
        status: "422",
        ru: "Не длиннее 100 символов.",
        kk: "100 таңбадан аспауы керек.",
        en: "At most 100 characters.",
    },
    Entry {
        code: "sex_required",
        status: "422",
        ru: "Укажите пол.",
        kk: "Жынысыңызды көрсетіңіз.",
        en: "Choose your sex.",
    },
    Entry {
        code: "invalid_birth_date",
        status: "422",
        ru: "Укажите дату рождения в формате ГГГГ-ММ-ДД.",
        kk: "Туған күніңізді ЖЖЖЖ-АА-КК пішімінде көрсетіңіз.",
        en: "Enter the birth date as YYYY-MM-DD.",
    },
    Entry {
        code: "birth_date_out_of_range",
        status: "422",
        ru: "Возраст должен быть от 14 до 100 лет. Проверьте дату рождения.",
        kk: "Жасыңыз 14-тен 100-ге дейін болуы керек. Туған күніңізді тексеріңіз.",
        en: "The age must be between 14 and 100. Check the birth date.",
    },
    Entry {
        code: "birth_date_mismatch_iin",
        status: "422",
        ru: "Дата рождения не совпадает с ИИН.",
        kk: "Туған күні ЖСН-мен сәйкес келмейді.",
        en: "The birth date does not match your IIN.",
    },
    Entry {
        code: "sex_mismatch_iin",
        status: "422",
        ru: "Пол не совпадает с ИИН.",
        kk: "Жынысы ЖСН-мен сәйкес келмейді.",
        en: "The sex does not match your IIN.",
    },
    Entry {
        code: "unknown_region",
        status: "422",
        ru: "Выберите регион из списка.",
        kk: "Өңірді тізімнен таңдаңыз.",
        en: "Choose a region from the list.",
    },
    Entry {
        code: "phone_required",
        status: "422",
        ru: "Укажите номер мобильного телефона.",
        kk: "Ұялы телефон нөмірін көрсетіңіз.",
        en: "Enter your mobile phone number.",
    },
    Entry {
        code: "phone_invalid",
        status: "422",
        ru: "Номер телефона указан неверно. Пример: +7 (701) 777-77-77.",
        kk: "Телефон нөмірі қате. Мысалы: +7 (701) 777-77-77.",
        en: "The phone number is not valid. Example: +7 (701) 777-77-77.",
    },
    Entry {
        code: "phone_not_kz_mobile",
        status: "422",
        ru: "Укажите мобильный номер казахстанского оператора (+7 70x, 747, 77x).",
        kk: "Қазақстандық оператордың ұялы нөмірін көрсетіңіз (+7 70x, 747, 77x).",
        en: "Enter a Kazakhstan mobile number (+7 70x, 747, 77x).",
    },
    Entry {
        code: "phone_not_mobile",
        status: "422",
        ru: "Укажите номер мобильного, а не стационарного телефона.",
        kk: "Стационар емес, ұялы телефон нөмірін көрсетіңіз.",
        en: "Enter a mobile number, not a landline.",
    },
    Entry {
        code: "unknown_contingent",
        status: "422",
        ru: "Выберите контингент из списка.",
        kk: "Контингентті тізімнен таңдаңыз.",
        en: "Choose your category from the list.",
    },
    Entry {
        code: "unknown_institution",
        status: "422",
        ru: "Выберите место образования из списка.",
        kk: "Білім алған орынды тізімнен таңдаңыз.",
        en: "Choose the institution from the list.",
    },
    Entry {
        code: "institution_archived",
        status: "422",
        ru: "Это учебное заведение больше нельзя выбрать. Выберите другое.",
        kk: "Бұл оқу орнын енді таңдауға болмайды. Басқасын таңдаңыз.",
        en: "This institution can no longer be chosen. Choose another.",
    },
    Entry {
        code: "institution_kind_mismatch",
        status: "422",
        ru: "Это учебное заведение не подходит к выбранному контингенту.",
        kk: "Бұл оқу орны таңдалған контингентке сәйкес келмейді.",
        en: "This institution does not fit the chosen category.",
    },
    Entry {
        code: "profile_locked",
        status: "422",
        ru: "Регистрация завершена: ФИО, пол и дату рождения изменить нельзя.",
        kk: "Тіркеу аяқталды: аты-жөнін, жынысын және туған күнін өзгертуге болмайды.",
        en: "Registration is complete: the name, sex and birth date can no longer change.",
    },
    Entry {
        code: "account_not_found",
        status: "404",
        ru: "Учётная запись не найдена.",
        kk: "Тіркелгі табылмады.",
        en: "The account was not found.",
    },
    Entry {
        code: "reason_required",
        status: "422",
        ru: "Укажите причину (не длиннее 500 символов).",
        kk: "Себебін көрсетіңіз (500 таңбадан аспайтын).",
        en: "State the reason (at most 500 characters).",
    },
    Entry {
        code: "on_behalf_of_required",
        status: "403",
        ru: "Укажите сотрудника, от имени которого выполняется действие.",
        kk: "Әрекет кімнің атынан орындалатынын көрсетіңіз.",
        en: "Name the staff member this is done for.",
    },
    Entry {
        code: "change_pending",
        status: "503",
        ru: "Служба поддержки изменяет вашу регистрацию. Повторите через несколько секунд.",
        kk: "Қолдау қызметі тіркеуіңізді өзгертуде. Бірнеше секундтан кейін қайталаңыз.",
        en: "The support desk is changing your registration. Try again in a few seconds.",
    },
    Entry {
        code: "invalid_account_id",
        status: "422",
        ru: "Неверный идентификатор учётной записи.",
        kk: "Тіркелгі идентификаторы дұрыс емес.",
        en: "The account id is not valid.",
    },
    Entry {
        code: "registration_incomplete",
        status: "409",
        ru: "Заполните все шаги регистрации.",
        kk: "Тіркеудің барлық қадамдарын толтырыңыз.",
        en: "Complete every registration step first.",
    },
    Entry {
        code: "registration_completed",
        status: "409",
        ru: "Регистрация уже завершена.",
        kk: "Тіркеу аяқталған.",
        en: "The registration is already complete.",
    },
    Entry {
        code: "account_blocked",
        status: "409",
        ru: "Учётная запись заблокирована. Обратитесь в поддержку.",
        kk: "Есептік жазба бұғатталған. Қолдау қызметіне хабарласыңыз.",
        en: "This account is blocked. Contact support.",
    },
    Entry {
        code: "query_too_long",
        status: "422",
        ru: "Слишком длинный запрос поиска.",
        kk: "Іздеу сұрауы тым ұзын.",
        en: "The search query is too long.",
    },
    Entry {
        code: "invalid_page_size",
        status: "422",
        ru: "Размер страницы — от 1 до 100.",
        kk: "Бет өлшемі 1-ден 100-ге дейін.",
        en: "The page size is 1 to 100.",
    },
    Entry {
        code: "invalid_page_token",
        status: "422",
        ru: "Неверная ссылка на страницу. Начните поиск заново.",
        kk: "Бет сілтемесі қате. Іздеуді қайта бастаңыз.",
        en: "The page link is not valid. Start the search again.",
    },
    Entry {
        code: "invalid_kind",
        status: "422",
        ru: "Неверный тип учебного заведения.",
        kk: "Оқу орнының түрі қате.",
        en: "The kind of institution is not valid.",
    },
    Entry {
        code: "consent_not_given",
        status: "422",
        ru: "Необходимо согласие на обработку биометрических данных.",
        kk: "Биометриялық деректерді өңдеуге келісім қажет.",
        en: "Consent to processing biometric data is required.",
    },
    Entry {
        code: "consent_version_outdated",
        status: "422",
        ru: "Текст согласия обновился. Ознакомьтесь с новой версией.",
        kk: "Келісім мәтіні жаңартылды. Жаңа нұсқасымен танысыңыз.",
        en: "The consent text has changed. Please read the new version.",
    },
    Entry {
        code: "flow_changed",
        status: "409",
        ru: "Данные изменились в другой вкладке. Обновите страницу и повторите.",
        kk: "Деректер басқа қойындыда өзгерді. Бетті жаңартып, қайталаңыз.",
        en: "The registration changed in another tab. Reload and try again.",
    },
    Entry {
        code: "flow_completed",
        status: "409",
        ru: "Этот шаг уже завершён. Войдите в систему.",
        kk: "Бұл қадам аяқталды. Жүйеге кіріңіз.",
        en: "This flow is complete. Please log in.",
    },
    Entry {
        code: "invalid_credentials",
        status: "401",
        ru: "Неверный логин или пароль.",
        kk: "Логин немесе құпиясөз қате.",
        en: "Wrong login or password.",
    },
    Entry {
        code: "too_many_attempts",
        status: "429",
        ru: "Слишком много неудачных попыток входа. Попробуйте позже.",
        kk: "Кіру әрекеттері тым көп. Кейінірек көріңіз.",
        en: "Too many failed logins. Try again later.",
    },
    Entry {
        code: "invalid_refresh_token",
        status: "401",
        ru: "Сессия завершена. Войдите снова.",
        kk: "Сессия аяқталды. Қайта кіріңіз.",
        en: "The session has ended. Please log in again.",
    },
    Entry {
        code: "refresh_token_reused",
        status: "401",
        ru: "Сессия завершена. Войдите снова.",
        kk: "Сессия аяқталды. Қайта кіріңіз.",
        en: "The session has ended. Please log in again.",
    },
    Entry {
        code: "unauthenticated",
        status: "401",
        ru: "Требуется вход в систему.",
        kk: "Жүйеге кіру қажет.",
        en: "Please log in.",
    },
    Entry {
        code: "forbidden",
        status: "403",
        ru: "Недостаточно прав.",
        kk: "Құқық жеткіліксіз.",
        en: "Not allowed.",
    },
    Entry {
        code: "handoff_expired",
        status: "410",
        ru: "Ссылка устарела или уже использована. Создайте новую на компьютере.",
        kk: "Сілтеменің мерзімі өтті немесе ол пайдаланылды. Компьютерде жаңасын жасаңыз.",
        en: "This link has expired or was already used. Make a new one on the computer.",
    },
    Entry {
        code: "invalid_handoff",
        status: "422",
        ru: "Это не ссылка для продолжения на телефоне.",
        kk: "Бұл телефонда жалғастыруға арналған сілтеме емес.",
        en: "This is not a link for continuing on a phone.",
    },
    Entry {
        code: "capture_only",
        status: "403",
        ru: "С телефона можно только сделать снимки. Продолжите на компьютере.",
        kk: "Телефоннан тек суретке түсіруге болады. Компьютерде жалғастырыңыз.",
        en: "The phone may only take the photos. Continue on the computer.",
    },
    Entry {
        code: "overloaded",
        status: "429",
        ru: "Сейчас очень много заявок. Повторите через несколько секунд.",
        kk: "Қазір өтініштер өте көп. Бірнеше секундтан кейін қайталаңыз.",
        en: "Very many applicants right now. Try again in a few seconds.",
    },
    Entry {
        code: "rate_limited",
        status: "429",
        ru: "Слишком много запросов. Подождите немного.",
        kk: "Сұраулар тым көп. Біраз күтіңіз.",
        en: "Too many requests. Please wait a moment.",
    },
    Entry {
        code: "proof_of_work_required",
        status: "429",
        ru: "С вашей сети сейчас очень много запросов. Ваше устройство решит небольшую задачу и повторит запрос — это займёт секунду.",
        kk: "Желіңізден қазір сұраулар өте көп. Құрылғыңыз шағын есепті шешіп, сұрауды қайталайды — бұл бір секундқа созылады.",
        en: "Very many requests come from your network right now. Your device solves a small puzzle and repeats the request; it takes a second.",
    },
    Entry {
        code: "address_budget_exhausted",
        status: "429",
        ru: "С этого устройства было слишком много запросов кода или попыток входа. Попробуйте позже.",
        kk: "Бұл құрылғыдан тым көп код сұралды немесе кіру әрекеттері жасалды. Кейінірек қайталаңыз.",
        en: "Too many codes or login attempts came from this device. Try again later.",
    },
    Entry {
        code: "uploads_busy",
        status: "503",
        ru: "Сейчас загружается очень много фотографий. Повторите через несколько секунд.",
        kk: "Қазір фотосуреттер өте көп жүктелуде. Бірнеше секундтан кейін қайталаңыз.",
        en: "Very many photos are being uploaded right now. Try again in a few seconds.",
    },
    Entry {
        code: "body_too_slow",
        status: "408",
        ru: "Фотография передаётся слишком медленно. Проверьте связь и отправьте её снова.",
        kk: "Фотосурет тым баяу жіберілуде. Байланысты тексеріп, қайта жіберіңіз.",
        en: "The photo is arriving too slowly. Check your connection and send it again.",
    },
    Entry {
        code: "dependency_unavailable",
        status: "503",
        ru: "Сервис временно недоступен. Повторите попытку позже.",
        kk: "Қызмет уақытша қолжетімсіз. Кейінірек қайталаңыз.",
        en: "The service is temporarily unavailable. Try again later.",
    },
];

/// What a code outside the catalogue (an internal failure) reads as.
const INTERNAL: Entry = Entry {
    code: "internal",
    status: "500",
    ru: "Внутренняя ошибка. Повторите попытку позже.",
    kk: "Ішкі қате. Кейінірек қайталаңыз.",
    en: "Internal error. Try again later.",
};

/// The message for an error code.
pub fn message(code: &str, lang: Lang) -> &'static str {
    let entry = CATALOGUE
        .iter()
        .find(|entry| entry.code == code)
        .unwrap_or(&INTERNAL);
    lang.pick(entry.ru, entry.kk, entry.en)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn honours_q_values_and_falls_back_to_russian() {
        assert_eq!(Lang::from_header(None), Lang::Ru);
        assert_eq!(Lang::from_header(Some("de-DE,fr;q=0.8")), Lang::Ru);
        assert_eq!(Lang::from_header(Some("kk-KZ,ru;q=0.9,en;q=0.8")), Lang::Kk);
        assert_eq!(Lang::from_header(Some("ru;q=0.5, en")), Lang::En);
        assert_eq!(Lang::from_header(Some("en;q=0")), Lang::Ru);
    }

    #[test]
    fn every_code_has_three_distinct_messages_once() {
        let mut seen = std::collections::HashSet::new();
        for entry in CATALOGUE.iter().chain([&INTERNAL]) {
            assert!(seen.insert(entry.code), "{} twice", entry.code);
            assert!(
                entry.ru != entry.kk && entry.kk != entry.en && entry.ru != entry.en,
                "{}",
                entry.code
            );
            assert_eq!(message(entry.code, Lang::En), entry.en);
        }
        assert_eq!(message("no_such_code", Lang::En), INTERNAL.en);
    }

    #[test]
    fn every_reason_a_service_can_give_an_applicant_has_its_messages() {
        // Per service, its reasons and those no applicant can cause through the gateway (it
        // sends them well-formed, or the call is an operator's over gRPC).
        let services: [(&str, &[&str], &[&str]); 4] = [
            (
                "identity",
                examreg_identity::error::REASONS,
                // The gateway checks the login is there, and presents its own client; support
                // actions and the system of record's reads are the exam center's, over gRPC.
                &[
                    "login_required",
                    "invalid_client",
                    "purpose_required",
                    "identifier_released",
                    "invalid_steps",
                    "invalid_status",
                    "invalid_page_token",
                    "invalid_cursor",
                    "cursor_expired",
                    // The streams are the services' and the exam center's, over gRPC.
                    "too_many_streams",
                ],
            ),
            (
                "verification",
                examreg_verification::error::REASONS,
                // The gateway names the purpose and the notice itself.
                &["invalid_purpose", "invalid_notice"],
            ),
            (
                "biometrics",
                examreg_biometrics::error::REASONS,
                &[
                    "header_required",
                    "invalid_kind",
                    // The gateway states the holder from identity's own answer.
                    "invalid_holder",
                    "consent_version_required",
                    "purpose_required",
                    "capture_not_found",
                    // Reopening, the access log and the review queue are the exam center's,
                    // over gRPC.
                    "invalid_step",
                    "invalid_page_token",
                    "invalid_decision",
                    "reason_required",
                    "review_not_found",
                    "review_decided",
                ],
            ),
            (
                "profile",
                examreg_profile::error::REASONS,
                // Directory administration, reopening, the access log and the statistics are
                // the exam center's, over gRPC.
                &[
                    "invalid_institution_name",
                    "invalid_institution_id",
                    "institution_not_found",
                    "institution_exists",
                    "invalid_csv",
                    "purpose_required",
                    "invalid_step",
                    "profile_not_found",
                    "invalid_grouping",
                    "invalid_time_zone",
                ],
            ),
        ];
        for (service, reasons, internal_only) in services {
            for reason in reasons.iter().filter(|r| !internal_only.contains(r)) {
                let status = examreg_kit::errors::status(tonic::Code::InvalidArgument, reason, "");
                let code = crate::error::ApiError::from(status).code;
                assert!(
                    CATALOGUE.iter().any(|e| e.code == code),
                    "{service}'s {reason} reaches applicants as {code}, which has no messages"
                );
            }
        }
    }

    /// The table of docs/errors.md is this catalogue, printed: every code with its status and
    /// its messages in the three languages. `EXAMREG_BLESS=1` rewrites it.
    #[test]
    fn the_error_catalogue_in_docs_is_printed_from_the_catalogue() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/errors.md");
        let docs = std::fs::read_to_string(&path).unwrap();
        let header = "| code | status | Қазақша | Русский | English |\n|---|---|---|---|---|\n";
        let intro = docs.split(header).next().unwrap_or_default();
        let cell = |text: &str| text.replace('|', "\\|");
        let rows: String = CATALOGUE
            .iter()
            .chain([&INTERNAL])
            .map(|e| {
                format!(
                    "| `{}` | {} | {} | {} | {} |\n",
                    e.code,
                    e.status,
                    cell(e.kk),
                    cell(e.ru),
                    cell(e.en)
                )
            })
            .collect();
        let printed = format!("{intro}{header}{rows}");
        if std::env::var_os("EXAMREG_BLESS").is_some() {
            std::fs::write(&path, &printed).unwrap();
            return;
        }
        assert!(
            docs == printed,
            "docs/errors.md is not the catalogue: run \
             `EXAMREG_BLESS=1 cargo test -p examreg-gateway --lib i18n` and commit the change"
        );
    }
}
