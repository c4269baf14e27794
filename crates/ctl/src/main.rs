//! `examreg-ctl`: see the crate's documentation and `examreg-ctl --help`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let mut out = std::io::stdout().lock();
    match examreg_ctl::run(std::env::args_os(), &mut out).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Help and usage errors from the parser print as the parser formats them.
            match e.downcast_ref::<clap::Error>() {
                Some(usage) => {
                    let _ = usage.print();
                    if usage.use_stderr() {
                        std::process::ExitCode::from(2)
                    } else {
                        std::process::ExitCode::SUCCESS
                    }
                }
                None => {
                    eprintln!("examreg-ctl: {e:#}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
    }
}
