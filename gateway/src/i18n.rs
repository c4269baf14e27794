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

/// The message for an error code.
pub fn message(code: &str, lang: Lang) -> &'static str {
    let (ru, kk, en) = match code {
        "malformed_request" => (
            "Некорректный запрос.",
            "Сұраным дұрыс емес.",
            "The request is malformed.",
        ),
        "body_too_large" => (
            "Слишком большой запрос.",
            "Сұраным тым үлкен.",
            "The request body is too large.",
        ),
        "not_found" => ("Не найдено.", "Табылмады.", "Not found."),
        "validation_failed" => (
            "Проверьте введённые данные.",
            "Енгізілген деректерді тексеріңіз.",
            "Check the data you entered.",
        ),
        "terms_not_accepted" => (
            "Необходимо принять Условия использования.",
            "Пайдалану шарттарын қабылдау қажет.",
            "You must accept the terms of use.",
        ),
        "terms_version_outdated" => (
            "Условия использования обновились, ознакомьтесь с новой версией.",
            "Пайдалану шарттары жаңартылды, жаңа нұсқасымен танысыңыз.",
            "The terms of use have changed; please read the new version.",
        ),
        "invalid_citizenship" => (
            "Выберите гражданство из списка.",
            "Азаматтықты тізімнен таңдаңыз.",
            "Choose a citizenship from the list.",
        ),
        "invalid_iin" => (
            "ИИН введён неверно: проверьте 12 цифр.",
            "ЖСН қате енгізілген: 12 цифрды тексеріңіз.",
            "The IIN is not valid: check the 12 digits.",
        ),
        "iin_required" => (
            "Граждане Казахстана указывают ИИН.",
            "Қазақстан азаматтары ЖСН көрсетеді.",
            "Citizens of Kazakhstan give their IIN.",
        ),
        "identifier_required" => (
            "Укажите ИИН или номер паспорта.",
            "ЖСН немесе паспорт нөмірін көрсетіңіз.",
            "Give your IIN or passport number.",
        ),
        "invalid_passport_number" => (
            "Номер паспорта введён неверно.",
            "Паспорт нөмірі қате енгізілген.",
            "The passport number is not valid.",
        ),
        "invalid_email" => (
            "Адрес электронной почты введён неверно.",
            "Электрондық пошта мекенжайы қате.",
            "The email address is not valid.",
        ),
        "invalid_code" => (
            "Неверный код. Проверьте письмо и попробуйте ещё раз.",
            "Код қате. Хатты тексеріп, қайталап көріңіз.",
            "Wrong code. Check the letter and try again.",
        ),
        "invalid_code_format" => (
            "Код состоит из 6 цифр.",
            "Код 6 цифрдан тұрады.",
            "The code is 6 digits.",
        ),
        "code_expired" => (
            "Срок действия кода истёк. Запросите новый код.",
            "Кодтың мерзімі өтті. Жаңа код сұраңыз.",
            "The code has expired. Request a new one.",
        ),
        "code_attempts_exhausted" => (
            "Слишком много неверных попыток. Запросите новый код.",
            "Қате әрекеттер тым көп. Жаңа код сұраңыз.",
            "Too many wrong attempts. Request a new code.",
        ),
        "resend_too_early" => (
            "Новый код можно будет запросить чуть позже. Проверьте папку «Спам».",
            "Жаңа кодты сәл кейінірек сұрауға болады. «Спам» қалтасын тексеріңіз.",
            "You can request a new code a little later. Check your spam folder.",
        ),
        "send_budget_exhausted" => (
            "Слишком много запросов кода. Попробуйте позже.",
            "Код сұраулары тым көп. Кейінірек көріңіз.",
            "Too many code requests. Try again later.",
        ),
        "password_mismatch" => (
            "Пароли не совпадают.",
            "Құпиясөздер сәйкес емес.",
            "The passwords do not match.",
        ),
        "weak_password" => (
            "Пароль слишком простой: не менее 8 символов, без ИИН и имени почты, не из списка распространённых.",
            "Құпиясөз тым қарапайым: кемінде 8 таңба, ЖСН мен пошта атауынсыз, кең таралғандардан емес.",
            "The password is too weak: at least 8 characters, not containing your IIN or email name, not a common one.",
        ),
        "invalid_email_proof" => (
            "Подтверждение почты недействительно. Подтвердите почту ещё раз.",
            "Поштаны растау жарамсыз. Поштаны қайта растаңыз.",
            "The email confirmation is no longer valid. Confirm the email again.",
        ),
        "identifier_taken" => (
            "Учётная запись с этим ИИН или паспортом уже существует. Войдите или восстановите пароль.",
            "Бұл ЖСН немесе паспортпен тіркелгі бар. Кіріңіз немесе құпиясөзді қалпына келтіріңіз.",
            "An account with this IIN or passport already exists. Log in or recover the password.",
        ),
        "email_taken" => (
            "Эта почта уже используется другой учётной записью.",
            "Бұл пошта басқа тіркелгіде қолданылады.",
            "This email is already used by another account.",
        ),
        "flow_expired" => (
            "Время регистрации истекло. Начните заново.",
            "Тіркеу уақыты өтті. Қайтадан бастаңыз.",
            "The registration has expired. Please start again.",
        ),
        "step_out_of_order" => (
            "Сначала завершите предыдущий шаг.",
            "Алдымен алдыңғы қадамды аяқтаңыз.",
            "Complete the previous step first.",
        ),
        "unsupported_media_type" => (
            "Загрузите фотографию в формате JPEG или PNG.",
            "Суретті JPEG немесе PNG пішімінде жүктеңіз.",
            "Upload the photo as JPEG or PNG.",
        ),
        "photo_unsupported_type" => (
            "Это не фотография JPEG или PNG. Переснимите.",
            "Бұл JPEG немесе PNG суреті емес. Қайта түсіріңіз.",
            "This is not a JPEG or PNG photo. Retake it.",
        ),
        "photo_undecodable" => (
            "Фотографию не удалось прочитать (файл повреждён). Переснимите.",
            "Суретті оқу мүмкін болмады (файл бүлінген). Қайта түсіріңіз.",
            "The photo cannot be read (the file is damaged). Retake it.",
        ),
        "photo_too_small" => (
            "Фотография слишком маленькая. Переснимите камерой с лучшим разрешением.",
            "Сурет тым кішкентай. Жақсырақ ажыратымдылықпен қайта түсіріңіз.",
            "The photo is too small. Retake it with a better camera resolution.",
        ),
        "photo_blurred" => (
            "Фотография размыта. Держите камеру неподвижно и переснимите.",
            "Сурет бұлыңғыр. Камераны қозғалтпай, қайта түсіріңіз.",
            "The photo is blurred. Hold the camera still and retake it.",
        ),
        "photo_too_dark" => (
            "Фотография слишком тёмная. Включите свет и переснимите.",
            "Сурет тым қараңғы. Жарықты қосып, қайта түсіріңіз.",
            "The photo is too dark. Turn on a light and retake it.",
        ),
        "photo_too_bright" => (
            "Фотография засвечена. Отойдите от яркого света и переснимите.",
            "Сурет тым жарық. Жарық көзінен алыстап, қайта түсіріңіз.",
            "The photo is too bright. Move away from the bright light and retake it.",
        ),
        "photo_no_face" => (
            "На фотографии не найдено лицо. Поместите лицо в овал (на документе — фото владельца) и переснимите.",
            "Суретте бет табылмады. Бетіңізді сопақ ішіне орналастырып (құжатта — иесінің суреті), қайта түсіріңіз.",
            "No face was found. Place your face in the oval (on the document, the holder's photo) and retake it.",
        ),
        "photo_several_faces" => (
            "В кадре несколько лиц. Снимите только себя.",
            "Кадрда бірнеше бет бар. Тек өзіңізді түсіріңіз.",
            "There is more than one face. Take a photo of yourself only.",
        ),
        "photo_face_too_small" => (
            "Лицо слишком маленькое. Подойдите ближе к камере.",
            "Бет тым кішкентай. Камераға жақынырақ келіңіз.",
            "The face is too small. Come closer to the camera.",
        ),
        "photo_face_off_centre" => (
            "Лицо не в центре. Поместите его в овал и переснимите.",
            "Бет ортада емес. Оны сопақ ішіне орналастырып, қайта түсіріңіз.",
            "The face is not in the centre. Place it in the oval and retake it.",
        ),
        "invalid_document_type" => (
            "Выберите документ: удостоверение личности или паспорт.",
            "Құжатты таңдаңыз: жеке куәлік немесе паспорт.",
            "Choose the document: an ID card or a passport.",
        ),
        "document_back_not_needed" => (
            "Для паспорта нужна только страница с фотографией, оборотная сторона не нужна.",
            "Паспорт үшін тек суреті бар беті керек, артқы жағы қажет емес.",
            "A passport needs only its photo page; there is no back side to upload.",
        ),
        "name_required" => (
            "Укажите фамилию и имя.",
            "Тегі мен атыңызды көрсетіңіз.",
            "Enter your surname and given name.",
        ),
        "name_invalid_characters" => (
            "Используйте только буквы, дефис, апостроф и пробелы между словами.",
            "Тек әріптерді, дефисті, апострофты және сөз арасындағы бос орынды қолданыңыз.",
            "Use letters only, with a hyphen, apostrophe or space between words.",
        ),
        "name_too_long" => (
            "Не длиннее 100 символов.",
            "100 таңбадан аспауы керек.",
            "At most 100 characters.",
        ),
        "sex_required" => (
            "Укажите пол.",
            "Жынысыңызды көрсетіңіз.",
            "Choose your sex.",
        ),
        "invalid_birth_date" => (
            "Укажите дату рождения в формате ГГГГ-ММ-ДД.",
            "Туған күніңізді ЖЖЖЖ-АА-КК пішімінде көрсетіңіз.",
            "Enter the birth date as YYYY-MM-DD.",
        ),
        "birth_date_out_of_range" => (
            "Возраст должен быть от 14 до 100 лет. Проверьте дату рождения.",
            "Жасыңыз 14-тен 100-ге дейін болуы керек. Туған күніңізді тексеріңіз.",
            "The age must be between 14 and 100. Check the birth date.",
        ),
        "birth_date_mismatch_iin" => (
            "Дата рождения не совпадает с ИИН.",
            "Туған күні ЖСН-мен сәйкес келмейді.",
            "The birth date does not match your IIN.",
        ),
        "sex_mismatch_iin" => (
            "Пол не совпадает с ИИН.",
            "Жынысы ЖСН-мен сәйкес келмейді.",
            "The sex does not match your IIN.",
        ),
        "unknown_region" => (
            "Выберите регион из списка.",
            "Өңірді тізімнен таңдаңыз.",
            "Choose a region from the list.",
        ),
        "phone_required" => (
            "Укажите номер мобильного телефона.",
            "Ұялы телефон нөмірін көрсетіңіз.",
            "Enter your mobile phone number.",
        ),
        "phone_invalid" => (
            "Номер телефона указан неверно. Пример: +7 (701) 777-77-77.",
            "Телефон нөмірі қате. Мысалы: +7 (701) 777-77-77.",
            "The phone number is not valid. Example: +7 (701) 777-77-77.",
        ),
        "phone_not_kz_mobile" => (
            "Укажите мобильный номер казахстанского оператора (+7 70x, 747, 77x).",
            "Қазақстандық оператордың ұялы нөмірін көрсетіңіз (+7 70x, 747, 77x).",
            "Enter a Kazakhstan mobile number (+7 70x, 747, 77x).",
        ),
        "phone_not_mobile" => (
            "Укажите номер мобильного, а не стационарного телефона.",
            "Стационар емес, ұялы телефон нөмірін көрсетіңіз.",
            "Enter a mobile number, not a landline.",
        ),
        "unknown_contingent" => (
            "Выберите контингент из списка.",
            "Контингентті тізімнен таңдаңыз.",
            "Choose your category from the list.",
        ),
        "unknown_institution" => (
            "Выберите место образования из списка.",
            "Білім алған орынды тізімнен таңдаңыз.",
            "Choose the institution from the list.",
        ),
        "institution_archived" => (
            "Это учебное заведение больше нельзя выбрать. Выберите другое.",
            "Бұл оқу орнын енді таңдауға болмайды. Басқасын таңдаңыз.",
            "This institution can no longer be chosen. Choose another.",
        ),
        "institution_kind_mismatch" => (
            "Это учебное заведение не подходит к выбранному контингенту.",
            "Бұл оқу орны таңдалған контингентке сәйкес келмейді.",
            "This institution does not fit the chosen category.",
        ),
        "profile_locked" => (
            "Регистрация завершена: ФИО, пол и дату рождения изменить нельзя.",
            "Тіркеу аяқталды: аты-жөнін, жынысын және туған күнін өзгертуге болмайды.",
            "Registration is complete: the name, sex and birth date can no longer change.",
        ),
        "registration_incomplete" => (
            "Заполните все шаги регистрации.",
            "Тіркеудің барлық қадамдарын толтырыңыз.",
            "Complete every registration step first.",
        ),
        "registration_completed" => (
            "Регистрация уже завершена.",
            "Тіркеу аяқталған.",
            "The registration is already complete.",
        ),
        "account_blocked" => (
            "Учётная запись заблокирована. Обратитесь в поддержку.",
            "Есептік жазба бұғатталған. Қолдау қызметіне хабарласыңыз.",
            "This account is blocked. Contact support.",
        ),
        "query_too_long" => (
            "Слишком длинный запрос поиска.",
            "Іздеу сұрауы тым ұзын.",
            "The search query is too long.",
        ),
        "invalid_page_size" => (
            "Размер страницы — от 1 до 100.",
            "Бет өлшемі 1-ден 100-ге дейін.",
            "The page size is 1 to 100.",
        ),
        "invalid_page_token" => (
            "Неверная ссылка на страницу. Начните поиск заново.",
            "Бет сілтемесі қате. Іздеуді қайта бастаңыз.",
            "The page link is not valid. Start the search again.",
        ),
        "invalid_kind" => (
            "Неверный тип учебного заведения.",
            "Оқу орнының түрі қате.",
            "The kind of institution is not valid.",
        ),
        "consent_not_given" => (
            "Необходимо согласие на обработку биометрических данных.",
            "Биометриялық деректерді өңдеуге келісім қажет.",
            "Consent to processing biometric data is required.",
        ),
        "consent_version_outdated" => (
            "Текст согласия обновился. Ознакомьтесь с новой версией.",
            "Келісім мәтіні жаңартылды. Жаңа нұсқасымен танысыңыз.",
            "The consent text has changed. Please read the new version.",
        ),
        "flow_changed" => (
            "Данные изменились в другой вкладке. Обновите страницу и повторите.",
            "Деректер басқа қойындыда өзгерді. Бетті жаңартып, қайталаңыз.",
            "The registration changed in another tab. Reload and try again.",
        ),
        "flow_completed" => (
            "Этот шаг уже завершён. Войдите в систему.",
            "Бұл қадам аяқталды. Жүйеге кіріңіз.",
            "This flow is complete. Please log in.",
        ),
        "invalid_credentials" => (
            "Неверный логин или пароль.",
            "Логин немесе құпиясөз қате.",
            "Wrong login or password.",
        ),
        "too_many_attempts" => (
            "Слишком много неудачных попыток входа. Попробуйте позже.",
            "Кіру әрекеттері тым көп. Кейінірек көріңіз.",
            "Too many failed logins. Try again later.",
        ),
        "invalid_refresh_token" | "refresh_token_reused" => (
            "Сессия завершена. Войдите снова.",
            "Сессия аяқталды. Қайта кіріңіз.",
            "The session has ended. Please log in again.",
        ),
        "unauthenticated" => (
            "Требуется вход в систему.",
            "Жүйеге кіру қажет.",
            "Please log in.",
        ),
        "forbidden" => ("Недостаточно прав.", "Құқық жеткіліксіз.", "Not allowed."),
        "handoff_expired" => (
            "Ссылка устарела или уже использована. Создайте новую на компьютере.",
            "Сілтеменің мерзімі өтті немесе ол пайдаланылды. Компьютерде жаңасын жасаңыз.",
            "This link has expired or was already used. Make a new one on the computer.",
        ),
        "invalid_handoff" => (
            "Это не ссылка для продолжения на телефоне.",
            "Бұл телефонда жалғастыруға арналған сілтеме емес.",
            "This is not a link for continuing on a phone.",
        ),
        "capture_only" => (
            "С телефона можно только сделать снимки. Продолжите на компьютере.",
            "Телефоннан тек суретке түсіруге болады. Компьютерде жалғастырыңыз.",
            "The phone may only take the photos. Continue on the computer.",
        ),
        "overloaded" => (
            "Сейчас очень много заявок. Повторите через несколько секунд.",
            "Қазір өтініштер өте көп. Бірнеше секундтан кейін қайталаңыз.",
            "Very many applicants right now. Try again in a few seconds.",
        ),
        "rate_limited" => (
            "Слишком много запросов. Подождите немного.",
            "Сұраулар тым көп. Біраз күтіңіз.",
            "Too many requests. Please wait a moment.",
        ),
        "dependency_unavailable" => (
            "Сервис временно недоступен. Повторите попытку позже.",
            "Қызмет уақытша қолжетімсіз. Кейінірек қайталаңыз.",
            "The service is temporarily unavailable. Try again later.",
        ),
        _ => (
            "Внутренняя ошибка. Повторите попытку позже.",
            "Ішкі қате. Кейінірек қайталаңыз.",
            "Internal error. Try again later.",
        ),
    };
    lang.pick(ru, kk, en)
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
    fn every_code_has_three_distinct_messages() {
        for code in [
            "invalid_iin",
            "weak_password",
            "flow_expired",
            "too_many_attempts",
            "name_required",
            "name_invalid_characters",
            "name_too_long",
            "sex_required",
            "invalid_birth_date",
            "birth_date_out_of_range",
            "birth_date_mismatch_iin",
            "sex_mismatch_iin",
            "unknown_region",
            "phone_required",
            "phone_invalid",
            "phone_not_kz_mobile",
            "phone_not_mobile",
            "unknown_contingent",
            "unknown_institution",
            "institution_archived",
            "institution_kind_mismatch",
            "profile_locked",
            "registration_incomplete",
            "registration_completed",
            "account_blocked",
            "query_too_long",
            "invalid_page_size",
            "invalid_page_token",
            "invalid_kind",
            "overloaded",
            "handoff_expired",
            "invalid_handoff",
            "capture_only",
        ] {
            let all = [
                message(code, Lang::Ru),
                message(code, Lang::Kk),
                message(code, Lang::En),
            ];
            assert!(all[0] != all[1] && all[1] != all[2], "{code}");
            assert_ne!(message(code, Lang::En), message("no_such_code", Lang::En));
        }
    }
}
