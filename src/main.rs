//! The `capstan` binary: start the runtime, run the command, exit with its code.

#![deny(clippy::print_stderr, clippy::print_stdout)]

fn main() -> std::process::ExitCode {
    capstan::process::ensure_standard_fds();
    // Script code runs on the runtime's threads and on this one: all get the
    // script stack, so a deeply nested value ends in an error, not an abort.
    let stack = capstan::engine::limits::SCRIPT_STACK;
    let main = std::thread::Builder::new().name("capstan".into()).stack_size(stack).spawn(move || run(stack));
    match main.map(std::thread::JoinHandle::join) {
        Ok(Ok(code)) => code,
        Ok(Err(_)) | Err(_) => std::process::ExitCode::from(1),
    }
}

fn run(stack: usize) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(stack)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            capstan::errln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let code = runtime.block_on(capstan::cli::main());
    // Do not wait for idle blocking threads on the way out.
    runtime.shutdown_background();
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}
