//! The profile service over gRPC, with identity running for real (profile reads the caller's
//! IIN and citizenship from it), against fresh databases of the local stack.

use examreg_domain::Sex;
use examreg_kit::{
    auth::{ChangeAction, Keys, PROOF_AUDIENCE, PROOF_ISSUER, ProofClaims, unix_now, with_bearer},
    config::Secret,
    errors::reason_of,
    tokens::{KeySet, SigningKey},
};
use examreg_proto::{
    identity::v1::{
        self as id, create_account_request::Identifier,
        identity_service_client::IdentityServiceClient,
    },
    profile::v1::{self as pb, profile_service_client::ProfileServiceClient},
};
use examreg_testkit as tk;
use tonic::{Code, transport::Channel};
use uuid::Uuid;

const PASSWORD: &str = "Жасыл-алма-көктемде-7";

struct TestApp {
    identity: IdentityServiceClient<Channel>,
    profile: ProfileServiceClient<Channel>,
    /// The channel to profile, for its other gRPC services (the retention's).
    channel: Channel,
    key: SigningKey,
    proof_key: SigningKey,
    /// Profile's database, to age records as days pass.
    database: sqlx::PgPool,
    _stops: Vec<tokio::sync::oneshot::Sender<()>>,
}

/// An RPC of `client` as the caller of `token`: the answer, or the refusal.
macro_rules! rpc {
    ($client:expr, $rpc:ident, $request:expr, $token:expr) => {
        $client
            .clone()
            .$rpc(with_bearer($request, $token).unwrap())
            .await
            .map(tonic::Response::into_inner)
    };
}

/// Why a call is refused (the reason code).
async fn refused<T: std::fmt::Debug>(
    call: impl Future<Output = Result<T, tonic::Status>>,
) -> String {
    reason(&call.await.unwrap_err())
}

/// The profile an update RPC answered with, as the applicant of `token`.
macro_rules! updated {
    ($app:expr, $rpc:ident, $request:expr, $token:expr) => {
        rpc!($app.profile, $rpc, $request, $token).map(|answer| answer.profile.unwrap())
    };
}

async fn spawn() -> TestApp {
    spawn_with(|_| {}).await
}

/// Profile (and the identity it reads) with its configuration changed by `adjust`.
async fn spawn_with(adjust: impl FnOnce(&mut examreg_profile::Config)) -> TestApp {
    let key = SigningKey::generate();
    let proof_key = SigningKey::generate();
    let mut config = examreg_identity::Config::defaults();
    config.tls = tk::tls();
    config.database_url = Secret::new(tk::fresh_database("profile_identity").await);
    config.signing_key = Some(key.clone());
    config.proof_keys = KeySet::from_signing_keys([&proof_key]);
    let (watcher, secret_sha256) = tk::client("profile");
    config.service_clients = vec![examreg_identity::ServiceClient {
        id: watcher.id.clone(),
        secret_sha256,
        scopes: vec!["revocations:watch".into()],
        staff: false,
    }];
    let identity = examreg_identity::Application::build(config).await.unwrap();
    let identity_url = format!("https://{}", identity.addr());
    let (stop_identity, stopped) = tk::stopper();
    tokio::spawn(identity.run_until_stopped(stopped));
    let keys = Keys::default();
    tk::learn_keys(&identity_url, &keys, &watcher).await;

    let mut config = examreg_profile::Config::defaults();

    config.tls = tk::tls();
    let database = tk::fresh_database("profile").await;
    config.database_url = Secret::new(database.clone());
    config.identity_url = identity_url.clone();
    config.stats_min_count = 2;
    adjust(&mut config);
    let profile = examreg_profile::Application::build(config, keys)
        .await
        .unwrap();
    let profile_url = format!("https://{}", profile.addr());
    let (stop_profile, stopped) = tk::stopper();
    tokio::spawn(profile.run_until_stopped(stopped));
    TestApp {
        identity: IdentityServiceClient::new(
            examreg_kit::channel::lazy(&identity_url, &tk::tls()).unwrap(),
        ),
        profile: ProfileServiceClient::new(
            examreg_kit::channel::lazy(&profile_url, &tk::tls()).unwrap(),
        ),
        channel: examreg_kit::channel::lazy(&profile_url, &tk::tls()).unwrap(),
        key,
        proof_key,
        database: sqlx::PgPool::connect(&database).await.unwrap(),
        _stops: vec![stop_identity, stop_profile],
    }
}

fn reason(status: &tonic::Status) -> String {
    reason_of(status).reason
}

impl TestApp {
    fn service(&self, scopes: &[&str]) -> String {
        tk::service_token(&self.key, "operator", scopes)
    }

    /// Creates an account (a citizen with an IIN, or a foreigner with a passport) and logs in.
    async fn applicant(&self, identifier: Identifier, citizenship: &str) -> String {
        let email = tk::unique_email().to_lowercase();
        let gateway = self.service(&["accounts:create", "sessions:create"]);
        let login = match &identifier {
            Identifier::Iin(v) | Identifier::PassportNumber(v) => v.clone(),
        };
        let proof = self.proof_key.sign(&ProofClaims {
            iss: PROOF_ISSUER.into(),
            aud: PROOF_AUDIENCE.into(),
            sub: email.clone(),
            purpose: "registration".into(),
            jti: Uuid::new_v4().to_string(),
            iat: unix_now(),
            exp: unix_now() + 600,
        });
        rpc!(
            self.identity,
            create_account,
            id::CreateAccountRequest {
                citizenship: citizenship.into(),
                identifier: Some(identifier),
                email,
                email_proof: proof,
                password: PASSWORD.into(),
                terms: Some(id::TermsAcceptance {
                    version: "2026-01".into(),
                    sha256: "45777c14d90fa79dc6ce71ceb6f81cced62c929c472199547cfd939a54e954c6"
                        .into(),
                    language: "ru".into(),
                    accepted_at: None,
                    client_ip: "127.0.0.1".into(),
                    user_agent: "tests".into(),
                }),
            },
            &gateway
        )
        .unwrap();
        let session = rpc!(
            self.identity,
            login,
            id::LoginRequest {
                login,
                password: PASSWORD.into(),
                client_ip: "127.0.0.1".into(),
                user_agent: "tests".into(),
                ..Default::default()
            },
            &gateway
        )
        .unwrap();
        session.tokens.unwrap().access_token
    }

    async fn citizen(&self) -> (String, examreg_domain::Iin) {
        let iin = tk::random_iin(Sex::Female);
        let token = self.applicant(Identifier::Iin(iin.clone()), "KZ").await;
        (token, examreg_domain::Iin::parse(&iin).unwrap())
    }

    async fn name(
        &self,
        token: &str,
        surname: &str,
        given: &str,
        patronymic: &str,
    ) -> Result<pb::Profile, tonic::Status> {
        let request = pb::UpdateNameRequest {
            surname: surname.into(),
            given_name: given.into(),
            patronymic: patronymic.into(),
        };
        updated!(self, update_name, request, token)
    }

    async fn details(
        &self,
        token: &str,
        sex: pb::Sex,
        birth: &str,
        region: &str,
        phone: &str,
    ) -> Result<pb::Profile, tonic::Status> {
        let request = pb::UpdateDetailsRequest {
            sex: sex.into(),
            birth_date: birth.into(),
            region_code: region.into(),
            mobile_phone: phone.into(),
        };
        updated!(self, update_details, request, token)
    }

    async fn education(
        &self,
        token: &str,
        contingent: &str,
        institution: &str,
    ) -> Result<pb::Profile, tonic::Status> {
        let request = pb::UpdateEducationRequest {
            contingent_code: contingent.into(),
            institution_id: institution.into(),
        };
        updated!(self, update_education, request, token)
    }

    /// The applicant's profile as stored.
    async fn stored(&self, token: &str) -> pb::Profile {
        let answer = rpc!(
            self.profile,
            get_profile,
            pb::GetProfileRequest::default(),
            token
        );
        answer.unwrap().profile.unwrap()
    }

    async fn search(
        &self,
        request: pb::SearchInstitutionsRequest,
    ) -> pb::SearchInstitutionsResponse {
        let token = self.service(&[]);
        rpc!(self.profile, search_institutions, request, &token).unwrap()
    }

    async fn lock(&self, token: &str) -> pb::LockProfileResponse {
        self.profile
            .clone()
            .lock_profile(with_bearer(pb::LockProfileRequest {}, token).unwrap())
            .await
            .unwrap()
            .into_inner()
    }
}

fn birth(iin: &examreg_domain::Iin) -> String {
    iin.birth_date().format("%Y-%m-%d").to_string()
}

#[tokio::test]
async fn names_are_normalized_and_each_fault_has_its_code() {
    let app = spawn().await;
    let (token, _) = app.citizen().await;
    let profile = app
        .name(&token, "  Сәрсенбаева ", "Айгерім   Нұрлыбекқызы", "")
        .await
        .unwrap();
    assert_eq!(profile.surname, "Сәрсенбаева");
    assert_eq!(profile.given_name, "Айгерім Нұрлыбекқызы");
    assert_eq!(profile.patronymic, "");
    assert_eq!(profile.missing, ["details", "education"]);
    for (surname, given, patronymic, code, field) in [
        ("", "Айгерім", "", "name_required", "surname"),
        ("Иванова", "  ", "", "name_required", "given_name"),
        ("Иванова1", "Анна", "", "name_invalid_characters", "surname"),
        (
            "Иванова",
            "Анна",
            "<script>",
            "name_invalid_characters",
            "patronymic",
        ),
        (&"ә".repeat(101), "Анна", "", "name_too_long", "surname"),
    ] {
        let err = app
            .name(&token, surname, given, patronymic)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(reason(&err), code, "{surname:?} {given:?} {patronymic:?}");
        assert_eq!(
            reason_of(&err).fields.first().map(|f| f.0.as_str()),
            Some(field)
        );
    }
    // A refused write changed nothing.
    let stored = app.stored(&token).await;
    assert_eq!(stored.surname, "Сәрсенбаева");
}

#[tokio::test]
async fn details_match_the_iin_and_every_phone_spelling_is_one_number() {
    let app = spawn().await;
    let (token, iin) = app.citizen().await;
    for typed in ["8 701 777 77 77", "+7 (701) 777-77-77", "87017777777"] {
        let profile = app
            .details(&token, pb::Sex::Female, &birth(&iin), "KZ-71", typed)
            .await
            .unwrap();
        assert_eq!(profile.mobile_phone, "+77017777777", "{typed}");
        assert_eq!(profile.region_code, "KZ-71");
    }
    let other_day = (iin.birth_date() + chrono::Days::new(1))
        .format("%Y-%m-%d")
        .to_string();
    let born = birth(&iin);
    let born = born.as_str();
    // One value wrong at a time.
    #[rustfmt::skip]
    let cases = [
        (pb::Sex::Female, other_day.as_str(), "KZ-71", "+77017777777", "birth_date_mismatch_iin"),
        (pb::Sex::Male, born, "KZ-71", "+77017777777", "sex_mismatch_iin"),
        (pb::Sex::Female, born, "KZ-71", "+7 916 123 45 67", "phone_not_kz_mobile"),
        (pb::Sex::Female, born, "KZ-71", "+7 701 77", "phone_invalid"),
        (pb::Sex::Female, born, "KZ-99", "+77017777777", "unknown_region"),
        (pb::Sex::Female, "2020-01-01", "KZ-71", "+77017777777", "birth_date_out_of_range"),
        (pb::Sex::Female, "11.12.2006", "KZ-71", "+77017777777", "invalid_birth_date"),
        (pb::Sex::Unspecified, born, "KZ-71", "+77017777777", "sex_required"),
    ];
    for (sex, birth_date, region, phone, code) in cases {
        let err = app
            .details(&token, sex, birth_date, region, phone)
            .await
            .unwrap_err();
        assert_eq!(reason(&err), code, "{birth_date} {region} {phone}");
    }
    // A foreigner with a passport: no IIN to match, and a foreign mobile is fine.
    let passport = format!("N{}", &Uuid::new_v4().simple().to_string()[..8]).to_uppercase();
    let foreigner = app
        .applicant(Identifier::PassportNumber(passport), "RU")
        .await;
    let profile = app
        .details(
            &foreigner,
            pb::Sex::Male,
            "2004-03-08",
            "KZ-75",
            "+7 916 123 45 67",
        )
        .await
        .unwrap();
    assert_eq!(profile.mobile_phone, "+79161234567");
}

#[tokio::test]
async fn institutions_are_found_in_every_language_by_region_and_page_by_page() {
    let app = spawn().await;
    let ids = |r: &pb::SearchInstitutionsResponse| -> Vec<String> {
        r.institutions.iter().map(|i| i.id.clone()).collect()
    };
    for query in [
        "ұлттық университеті",
        "ФАРАБИ",
        "al-farabi",
        "аль-фараби",
        "Қазақ ұлттық",
    ] {
        let found = app
            .search(pb::SearchInstitutionsRequest {
                query: query.into(),
                page_size: 100,
                ..Default::default()
            })
            .await;
        assert!(
            ids(&found).contains(&"kaznu".to_owned()),
            "{query}: {found:?}"
        );
    }
    // Ё and е are one letter for the search.
    let found = app
        .search(pb::SearchInstitutionsRequest {
            query: "Гумилёв".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(ids(&found), ["enu"]);
    // Karaganda region only.
    let found = app
        .search(pb::SearchInstitutionsRequest {
            region_code: "KZ-35".into(),
            language: "en".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(ids(&found), ["kstu", "buketov"]);
    // Page by page through Almaty's universities: no duplicates, nothing lost.
    let all = app
        .search(pb::SearchInstitutionsRequest {
            region_code: "kz-75".into(),
            page_size: 100,
            ..Default::default()
        })
        .await;
    assert_eq!(all.institutions.len(), 7);
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .search(pb::SearchInstitutionsRequest {
                region_code: "KZ-75".into(),
                page_size: 3,
                page_token: token.clone(),
                ..Default::default()
            })
            .await;
        assert!(page.institutions.len() <= 3);
        paged.extend(ids(&page));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(paged, ids(&all));
    // A query with LIKE's wildcards matches them literally.
    let found = app
        .search(pb::SearchInstitutionsRequest {
            query: "%".into(),
            ..Default::default()
        })
        .await;
    assert!(found.institutions.is_empty());
}

#[tokio::test]
async fn the_directory_is_administered_with_its_scope_and_archived_institutions_stay_chosen() {
    let app = spawn().await;
    let admin = app.service(&["directory:admin"]);
    let new = pb::Institution {
        id: "astana-it".into(),
        region_code: "KZ-71".into(),
        kind: "university".into(),
        name: Some(pb::LocalizedName {
            kk: "Astana IT University".into(),
            ru: "Astana IT University".into(),
            en: "Astana IT University".into(),
        }),
        archived: false,
    };
    let add = |token: &str| {
        with_bearer(
            pb::AddInstitutionRequest {
                institution: Some(new.clone()),
            },
            token,
        )
        .unwrap()
    };
    let denied = app
        .profile
        .clone()
        .add_institution(add(&app.service(&["profile:read"])))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    app.profile
        .clone()
        .add_institution(add(&admin))
        .await
        .unwrap();
    let taken = app
        .profile
        .clone()
        .add_institution(add(&admin))
        .await
        .unwrap_err();
    assert_eq!(reason(&taken), "institution_exists");
    rpc!(
        app.profile,
        rename_institution,
        pb::RenameInstitutionRequest {
            id: "astana-it".into(),
            name: Some(pb::LocalizedName {
                kk: "Astana IT университеті".into(),
                ru: "Университет Astana IT".into(),
                en: "Astana IT University".into(),
            }),
        },
        &admin
    )
    .unwrap();
    let found = app
        .search(pb::SearchInstitutionsRequest {
            query: "университет astana".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(found.institutions.len(), 1);

    // An applicant chooses it; then it is archived.
    let (token, _) = app.citizen().await;
    let mismatch = app
        .education(&token, "school_graduate", "astana-it")
        .await
        .unwrap_err();
    assert_eq!(reason(&mismatch), "institution_kind_mismatch");
    assert_eq!(
        refused(app.education(&token, "doctor", "astana-it")).await,
        "unknown_contingent"
    );
    assert_eq!(
        refused(app.education(&token, "bachelor", "nowhere")).await,
        "unknown_institution"
    );
    let chosen = app
        .education(&token, "bachelor", "astana-it")
        .await
        .unwrap();
    assert_eq!(
        chosen.institution.unwrap().name.unwrap().ru,
        "Университет Astana IT"
    );
    rpc!(
        app.profile,
        archive_institution,
        pb::ArchiveInstitutionRequest {
            id: "astana-it".into(),
        },
        &admin
    )
    .unwrap();
    let (other, _) = app.citizen().await;
    assert_eq!(
        refused(app.education(&other, "bachelor", "astana-it")).await,
        "institution_archived"
    );
    let kept = app.stored(&token).await;
    let institution = kept.institution.unwrap();
    assert_eq!(
        (institution.id.as_str(), institution.archived),
        ("astana-it", true)
    );
    // Hidden from the search unless asked for.
    let found = app
        .search(pb::SearchInstitutionsRequest {
            query: "astana it".into(),
            ..Default::default()
        })
        .await;
    assert!(found.institutions.is_empty());

    // CSV import: all rows or none.
    let import =
        |csv: &str| with_bearer(pb::ImportInstitutionsRequest { csv: csv.into() }, &admin).unwrap();
    let csv = "id,region_code,kind,name_kk,name_ru,name_en\n\
               turan,KZ-75,university,Тұран университеті,Университет «Туран»,Turan University\n\
               \"narxoz\",KZ-75,university,\"Нархоз университеті\",\"Университет Нархоз\",\"Narxoz University\"\n\
               kaznu,KZ-75,university,Әл-Фараби атындағы Қазақ ұлттық университеті,КазНУ имени аль-Фараби,Al-Farabi Kazakh National University\n";
    let imported = app
        .profile
        .clone()
        .import_institutions(import(csv))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((imported.added, imported.updated), (2, 1));
    let bad = format!("{csv}broken,KZ-00,university,a,b,c\n");
    let err = app
        .profile
        .clone()
        .import_institutions(import(&bad))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "invalid_csv");
    assert!(err.message().contains("line 5"), "{}", err.message());
    // Every change is on record with who made it; the refused ones changed nothing.
    let log: Vec<(String, String, Option<String>, String)> = sqlx::query_as(
        "SELECT actor, action, institution_id, detail FROM directory_log ORDER BY id",
    )
    .fetch_all(&app.database)
    .await
    .unwrap();
    let operator = |action: &str, id: Option<&str>, detail: &str| {
        (
            "operator".to_owned(),
            action.to_owned(),
            id.map(str::to_owned),
            detail.to_owned(),
        )
    };
    assert_eq!(
        log,
        [
            operator("add", Some("astana-it"), ""),
            operator("rename", Some("astana-it"), ""),
            operator("archive", Some("astana-it"), ""),
            operator("import", None, "added 2, updated 1"),
        ]
    );
}

#[tokio::test]
async fn the_lock_needs_a_complete_profile_then_keeps_name_birth_date_and_sex() {
    let app = spawn().await;
    let (token, iin) = app.citizen().await;
    let incomplete = app.lock(&token).await;
    assert!(!incomplete.locked);
    assert_eq!(incomplete.missing, ["name", "details", "education"]);
    app.name(&token, "Сейтқали", "Дана", "").await.unwrap();
    app.details(
        &token,
        pb::Sex::Female,
        &birth(&iin),
        "KZ-75",
        "+77011234567",
    )
    .await
    .unwrap();
    assert_eq!(app.lock(&token).await.missing, ["education"]);
    app.education(&token, "bachelor", "kaznu").await.unwrap();
    assert!(app.lock(&token).await.locked);
    assert!(app.lock(&token).await.locked, "locking again is fine");

    let err = app.name(&token, "Басқа", "Дана", "").await.unwrap_err();
    assert_eq!(reason(&err), "profile_locked");
    // Phone and region stay editable; sex and birth date do not.
    let profile = app
        .details(
            &token,
            pb::Sex::Female,
            &birth(&iin),
            "KZ-71",
            "8 747 000 00 00",
        )
        .await
        .unwrap();
    assert_eq!(
        (profile.region_code.as_str(), profile.mobile_phone.as_str()),
        ("KZ-71", "+77470000000")
    );
    assert!(profile.locked_at.is_some());

    // Deletion is identity's, for an erasure it recorded (a client with the old admin scope
    // is refused), and is idempotent.
    let account = profile.account_id.clone();
    let delete = |token: &str| {
        with_bearer(
            pb::DeleteProfileRequest {
                account_id: account.clone(),
            },
            token,
        )
        .unwrap()
    };
    let denied = app
        .profile
        .clone()
        .delete_profile(delete(&token))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let admin = app.service(&["profile:admin"]);
    let denied = app
        .profile
        .clone()
        .delete_profile(delete(&admin))
        .await
        .unwrap_err();
    assert_eq!(reason(&denied), "change_not_recorded");
    let admin = tk::change_token(&app.key, account.parse().unwrap(), ChangeAction::Erase, &[]);
    assert!(
        app.profile
            .clone()
            .delete_profile(delete(&admin))
            .await
            .unwrap()
            .into_inner()
            .deleted
    );
    assert!(
        !app.profile
            .clone()
            .delete_profile(delete(&admin))
            .await
            .unwrap()
            .into_inner()
            .deleted
    );
    let gone = app
        .profile
        .clone()
        .get_profile(
            with_bearer(
                pb::GetProfileRequest {
                    account_id: account,
                    purpose: "erasure check".into(),
                },
                &app.service(&["profile:read"]),
            )
            .unwrap(),
        )
        .await
        .unwrap()
        .into_inner()
        .profile
        .unwrap();
    assert_eq!(gone.missing, ["name", "details", "education"]);
    // The applicant's session is still live here (only profile erased its part, as during an
    // erasure in flight): a write meets the tombstone and recreates nothing.
    assert_eq!(
        refused(app.name(&token, "Жұмабаев", "Ерлан", "")).await,
        "account_not_found"
    );
}

#[tokio::test]
async fn after_the_lock_a_foreigner_cannot_change_birth_date_or_sex_either() {
    // No IIN to check against: only the lock keeps these fields.
    let app = spawn().await;
    let passport = format!("P{}", &Uuid::new_v4().simple().to_string()[..8]).to_uppercase();
    let token = app
        .applicant(Identifier::PassportNumber(passport), "UZ")
        .await;
    app.name(&token, "Karimov", "Aziz", "").await.unwrap();
    app.details(
        &token,
        pb::Sex::Male,
        "2005-04-01",
        "KZ-79",
        "+998 90 123 45 67",
    )
    .await
    .unwrap();
    app.education(&token, "bachelor", "auezov").await.unwrap();
    assert!(app.lock(&token).await.locked);
    for (sex, birth) in [
        (pb::Sex::Male, "2005-04-02"),
        (pb::Sex::Female, "2005-04-01"),
    ] {
        let err = app
            .details(&token, sex, birth, "KZ-79", "+998 90 123 45 67")
            .await
            .unwrap_err();
        assert_eq!(reason(&err), "profile_locked", "{birth}");
    }
    let profile = app
        .details(
            &token,
            pb::Sex::Male,
            "2005-04-01",
            "KZ-75",
            "+998 91 765 43 21",
        )
        .await
        .unwrap();
    assert_eq!(
        (profile.birth_date.as_str(), profile.mobile_phone.as_str()),
        ("2005-04-01", "+998917654321")
    );
}

#[tokio::test]
async fn replicas_starting_at_once_migrate_the_database_once() {
    // Kubernetes starts several replicas together; sqlx serializes their migrations with an
    // advisory lock, so every one starts and the schema is applied once.
    let url = tk::fresh_database("profile_replicas").await;
    let starts = (0..3).map(|_| {
        let mut config = examreg_profile::Config::defaults();
        config.tls = tk::tls();
        config.database_url = Secret::new(url.clone());
        examreg_profile::Application::build(config, Keys::default())
    });
    for started in futures::future::join_all(starts).await {
        started.unwrap();
    }
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    let regions: i64 = sqlx::query_scalar("SELECT count(*) FROM regions")
        .fetch_one(&pool)
        .await
        .unwrap();
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .count();
    assert_eq!((applied, regions), (i64::try_from(migrations).unwrap(), 20));
}

impl TestApp {
    /// A citizen whose profile is complete and locked; the token, the IIN and the account id.
    async fn locked(
        &self,
        region: &str,
        institution: &str,
    ) -> (String, examreg_domain::Iin, String) {
        let (token, iin) = self.citizen().await;
        self.name(&token, "Сейтқали", "Дана", "").await.unwrap();
        let profile = self
            .details(
                &token,
                pb::Sex::Female,
                &birth(&iin),
                region,
                "+77011234567",
            )
            .await
            .unwrap();
        self.education(&token, "bachelor", institution)
            .await
            .unwrap();
        assert!(self.lock(&token).await.locked);
        (token, iin, profile.account_id)
    }

    async fn reopen(
        &self,
        token: &str,
        account: &str,
        steps: &[&str],
    ) -> Result<Vec<String>, tonic::Status> {
        let request = pb::ReopenProfileRequest {
            account_id: account.into(),
            steps: steps.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        Ok(self
            .profile
            .clone()
            .reopen_profile(with_bearer(request, token).unwrap())
            .await?
            .into_inner()
            .missing)
    }

    async fn count(
        &self,
        token: &str,
        group_by: pb::RegistrationGrouping,
        time_zone: &str,
    ) -> Result<pb::CountRegistrationsResponse, tonic::Status> {
        let request = pb::CountRegistrationsRequest {
            group_by: group_by.into(),
            time_zone: time_zone.into(),
            ..Default::default()
        };
        Ok(self
            .profile
            .clone()
            .count_registrations(with_bearer(request, token).unwrap())
            .await?
            .into_inner())
    }
}

#[tokio::test]
async fn a_reopened_step_is_redone_despite_the_lock_and_the_others_stay_locked() {
    let app = spawn().await;
    let (token, _, account) = app.locked("KZ-75", "kaznu").await;
    // Only identity, for a reopening it recorded: a client with the scopes, a change of
    // another person or of other steps are refused.
    let not_recorded = |status: tonic::Status| {
        assert_eq!(status.code(), Code::PermissionDenied);
        assert_eq!(reason(&status), "change_not_recorded");
    };
    let reopening = |account: &str, steps: &[&str]| {
        tk::change_token(
            &app.key,
            account.parse().unwrap(),
            ChangeAction::Reopen,
            steps,
        )
    };
    not_recorded(app.reopen(&token, &account, &["name"]).await.unwrap_err());
    let support = app.service(&["support:write", "profile:admin"]);
    not_recorded(app.reopen(&support, &account, &["name"]).await.unwrap_err());
    let other = reopening(&Uuid::new_v4().to_string(), &["name"]);
    not_recorded(app.reopen(&other, &account, &["name"]).await.unwrap_err());
    let name_only = reopening(&account, &["name"]);
    not_recorded(
        app.reopen(&name_only, &account, &["education"])
            .await
            .unwrap_err(),
    );
    assert!(app.stored(&token).await.redo.is_empty(), "nothing reopened");
    let err = app
        .reopen(&reopening(&account, &["face"]), &account, &["face"])
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "invalid_step");
    // A person without a profile has nothing to reopen: every step is missing already.
    let nobody = Uuid::new_v4().to_string();
    let missing = app
        .reopen(&reopening(&nobody, &["name"]), &nobody, &["name"])
        .await
        .unwrap();
    assert!(missing.contains(&"name".to_owned()), "{missing:?}");

    assert_eq!(
        app.reopen(&name_only, &account, &["name"]).await.unwrap(),
        ["name"]
    );
    assert_eq!(
        app.reopen(&name_only, &account, &["name"]).await.unwrap(),
        ["name"]
    );
    let stored = app.stored(&token).await;
    assert_eq!(
        (stored.missing.clone(), stored.redo.clone()),
        (vec!["name".to_owned()], vec!["name".to_owned()])
    );
    // Not lockable again before the name is redone.
    assert_eq!(app.lock(&token).await.missing, ["name"]);
    let renamed = app.name(&token, "Сейітқали", "Дана", "").await.unwrap();
    assert_eq!(renamed.surname, "Сейітқали");
    assert!(renamed.missing.is_empty() && renamed.redo.is_empty());
    assert!(app.lock(&token).await.locked);
    let err = app.name(&token, "Басқа", "Дана", "").await.unwrap_err();
    assert_eq!(reason(&err), "profile_locked", "redone once: final again");
}

#[tokio::test]
async fn a_services_read_is_logged_and_statistics_count_completed_registrations_only() {
    let app = spawn().await;
    let almaty_day = || {
        (chrono::Utc::now() + chrono::Duration::hours(5))
            .format("%Y-%m-%d")
            .to_string()
    };
    let day_before = almaty_day();
    let (_, _, first) = app.locked("KZ-75", "kaznu").await;
    let (_, _, second) = app.locked("KZ-71", "kaznu").await;
    let (pending, _) = app.citizen().await;
    app.name(&pending, "Ахметов", "Ерлан", "").await.unwrap();

    let seats = app.service(&["profile:read"]);
    let read = |purpose: &str| {
        with_bearer(
            pb::GetProfileRequest {
                account_id: first.clone(),
                purpose: purpose.into(),
            },
            &seats,
        )
        .unwrap()
    };
    let err = app.profile.clone().get_profile(read("")).await.unwrap_err();
    assert_eq!(reason(&err), "purpose_required");
    let profile = app
        .profile
        .clone()
        .get_profile(read("seat assignment"))
        .await
        .unwrap()
        .into_inner()
        .profile
        .unwrap();
    assert_eq!(profile.institution.unwrap().id, "kaznu");
    let auditor = app.service(&["audit:read"]);
    let request = pb::ListAccessLogRequest {
        account_id: first.clone(),
        ..Default::default()
    };
    let log = app
        .profile
        .clone()
        .list_access_log(with_bearer(request.clone(), &auditor).unwrap())
        .await
        .unwrap()
        .into_inner()
        .entries;
    let seen: Vec<(&str, &str, &str)> = log
        .iter()
        .map(|e| (e.actor.as_str(), e.what.as_str(), e.purpose.as_str()))
        .collect();
    assert_eq!(seen, [("operator", "profile", "seat assignment")]);
    let err = app
        .profile
        .clone()
        .list_access_log(with_bearer(request, &seats).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // Completed today: not counted yet (a day's counts move only once the day is over).
    let stats = app.service(&["stats:read"]);
    let today = app
        .count(&stats, pb::RegistrationGrouping::Region, "")
        .await
        .unwrap();
    // The narrow window right after a completion tells nothing either.
    let now = chrono::Utc::now();
    let narrow = pb::CountRegistrationsRequest {
        group_by: pb::RegistrationGrouping::Institution.into(),
        completed_from: Some(examreg_proto::convert::timestamp(
            now - chrono::Duration::seconds(3),
        )),
        completed_before: Some(examreg_proto::convert::timestamp(now)),
        ..Default::default()
    };
    let narrow = rpc!(app.profile, count_registrations, narrow, &stats).unwrap();
    if almaty_day() == day_before {
        assert_eq!((today.total, today.counts.len()), (0, 0), "{today:?}");
        assert_eq!((narrow.total, narrow.counts.len()), (0, 0), "{narrow:?}");
    }
    // A day later: two completed registrations; the pending one is not counted, nor a
    // reopened one. (This suite shows groups of two or more.)
    sqlx::query("UPDATE profiles SET locked_at = locked_at - interval '1 day'")
        .execute(&app.database)
        .await
        .unwrap();
    let day_before = (chrono::NaiveDate::parse_from_str(&day_before, "%Y-%m-%d").unwrap()
        - chrono::Days::new(1))
    .to_string();
    let by_region = app
        .count(&stats, pb::RegistrationGrouping::Region, "")
        .await
        .unwrap();
    // One in each region: each alone would single a person out; together they are two.
    let counts: Vec<(&str, i64)> = by_region
        .counts
        .iter()
        .map(|c| (c.key.as_str(), c.count))
        .collect();
    assert_eq!(counts, [("", 2)]);
    assert!(by_region.suppressed);
    assert_eq!(by_region.total, 2);
    let by_institution = app
        .count(&stats, pb::RegistrationGrouping::Institution, "")
        .await
        .unwrap();
    assert_eq!(by_institution.counts.len(), 1);
    assert_eq!(
        (
            by_institution.counts[0].key.as_str(),
            by_institution.counts[0].count
        ),
        ("kaznu", 2)
    );
    let by_category = app
        .count(&stats, pb::RegistrationGrouping::Category, "")
        .await
        .unwrap();
    assert_eq!(by_category.counts[0].key, "bachelor");
    let by_day = app
        .count(&stats, pb::RegistrationGrouping::Day, "Asia/Almaty")
        .await
        .unwrap();
    let day_after = (chrono::NaiveDate::parse_from_str(&almaty_day(), "%Y-%m-%d").unwrap()
        - chrono::Days::new(1))
    .to_string();
    let days: Vec<(&str, i64)> = by_day
        .counts
        .iter()
        .map(|c| (c.key.as_str(), c.count))
        .collect();
    assert!(
        days == [(day_before.as_str(), 2)]
            || days == [(day_after.as_str(), 2)]
            || day_before != day_after,
        "{days:?}"
    );
    let reopening = tk::change_token(
        &app.key,
        second.parse().unwrap(),
        ChangeAction::Reopen,
        &["education"],
    );
    app.reopen(&reopening, &second, &["education"])
        .await
        .unwrap();
    // One left: below the least count even alone, so withheld, and the total says nothing.
    let after_reopen = app
        .count(&stats, pb::RegistrationGrouping::Region, "")
        .await
        .unwrap();
    assert_eq!(
        (
            after_reopen.total,
            after_reopen.counts.len(),
            after_reopen.suppressed
        ),
        (0, 0, true)
    );

    // Bad input is refused; the scope is needed.
    let err = app
        .count(&stats, pb::RegistrationGrouping::Unspecified, "")
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "invalid_grouping");
    let err = app
        .count(&stats, pb::RegistrationGrouping::Day, "Mars/Olympus")
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "invalid_time_zone");
    let err = app
        .count(&seats, pb::RegistrationGrouping::Day, "")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn only_categories_with_institutions_are_offered_and_the_applicants_region_comes_first() {
    let app = spawn().await;
    let reader = app.service(&[]);
    let offered = |include_empty: bool| {
        let app = &app;
        let reader = reader.clone();
        async move {
            rpc!(
                app.profile,
                list_contingents,
                pb::ListContingentsRequest { include_empty },
                &reader
            )
            .unwrap()
            .contingents
            .into_iter()
            .map(|c| c.code)
            .collect::<Vec<_>>()
        }
    };
    // Only universities are seeded: the school and college categories wait for their
    // directories.
    assert_eq!(
        offered(false).await,
        ["bachelor", "master", "university_student"]
    );
    assert_eq!(offered(true).await.len(), 5);

    let admin = app.service(&["directory:admin"]);
    let csv = "id,region_code,kind,name_kk,name_ru,name_en\n\
               school-71-1,KZ-71,school,№1 мектеп-лицей,Школа-лицей №1,School-Lyceum No. 1\n\
               school-75-12,KZ-75,school,№12 гимназия,Гимназия №12,Gymnasium No. 12\n\
               school-75-3,KZ-75,school,№3 мектеп,Школа №3,School No. 3\n";
    rpc!(
        app.profile,
        import_institutions,
        pb::ImportInstitutionsRequest { csv: csv.into() },
        &admin
    )
    .unwrap();
    assert_eq!(
        offered(false).await,
        [
            "bachelor",
            "master",
            "university_student",
            "school_graduate"
        ]
    );
    // An applicant from Almaty sees Almaty's schools first, then the others, each part in
    // name order.
    let schools = |prefer: &str| {
        let app = &app;
        let prefer = prefer.to_owned();
        async move {
            app.search(pb::SearchInstitutionsRequest {
                kind: "school".into(),
                prefer_region_code: prefer,
                language: "ru".into(),
                ..Default::default()
            })
            .await
            .institutions
            .into_iter()
            .map(|i| i.id)
            .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        schools("kz-75").await,
        ["school-75-12", "school-75-3", "school-71-1"]
    );
    assert_eq!(
        schools("").await,
        ["school-75-12", "school-75-3", "school-71-1"]
    );
    assert_eq!(
        schools("KZ-71").await,
        ["school-71-1", "school-75-12", "school-75-3"]
    );
    // The school category is chosen with one of them; archived, the last one of a kind takes
    // its category off the list again.
    let (token, _) = app.citizen().await;
    app.education(&token, "school_graduate", "school-71-1")
        .await
        .unwrap();
    for id in ["school-71-1", "school-75-12", "school-75-3"] {
        rpc!(
            app.profile,
            archive_institution,
            pb::ArchiveInstitutionRequest { id: id.into() },
            &admin
        )
        .unwrap();
    }
    assert_eq!(
        offered(false).await,
        ["bachelor", "master", "university_student"]
    );
}

#[tokio::test]
async fn the_retention_deletes_old_access_log_entries_and_keeps_the_profile_and_the_proof() {
    use examreg_proto::retention::v1::{
        ListRetentionRunsRequest, retention_service_client::RetentionServiceClient,
    };
    let app = spawn_with(|config| {
        config.retain_records = Some(std::time::Duration::from_secs(1));
        config.sweep_every = std::time::Duration::from_secs(1);
    })
    .await;
    let (token, _, account) = app.locked("KZ-75", "kaznu").await;
    let request = pb::GetProfileRequest {
        account_id: account,
        purpose: "seat assignment".into(),
    };
    let seats = app.service(&["profile:read"]);
    app.profile
        .clone()
        .get_profile(with_bearer(request, &seats).unwrap())
        .await
        .unwrap();
    let gone = async {
        loop {
            let left: i64 = sqlx::query_scalar("SELECT count(*) FROM access_log")
                .fetch_one(&app.database)
                .await
                .unwrap();
            if left == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), gone)
        .await
        .expect("the retention deleted the entry");
    assert!(
        app.stored(&token).await.locked_at.is_some(),
        "the profile stays"
    );
    let dpo = app.service(&["audit:read"]);
    let report = RetentionServiceClient::new(app.channel.clone())
        .list_retention_runs(with_bearer(ListRetentionRunsRequest::default(), &dpo).unwrap())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.service, "profile");
    assert_eq!(report.rules[0].period, "1 second after the entry");
    let deleted: i64 = report.runs.iter().map(|r| r.deleted).sum();
    assert_eq!(deleted, 1);
    assert_eq!(report.runs[0].rule, "access_log");
}
