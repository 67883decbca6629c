//! The `capstan` binary: start the runtime, run the command, exit with its code.

fn main() -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let code = runtime.block_on(capstan::cli::main());
    // Do not wait for idle blocking threads on the way out.
    runtime.shutdown_background();
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}
