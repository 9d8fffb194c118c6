//! How a child ended: Python's `exitcode`, as a type.

use std::fmt;

/// How a child process ended: an exit code, or the signal that killed it.
///
/// [`ExitStatus::exitcode`] is exactly Python's `Process.exitcode` once the child has ended:
/// the code it exited with (0 for a normal return, 1 after a panic), or **minus** the number
/// of the signal that killed it (−15 for SIGTERM, −9 for SIGKILL).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExitStatus(Kind);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Code(i32),
    Signal(i32),
}

impl ExitStatus {
    /// Decodes a `waitpid` status word.
    pub(crate) fn from_wait_status(status: libc::c_int) -> Self {
        if libc::WIFSIGNALED(status) {
            ExitStatus(Kind::Signal(libc::WTERMSIG(status)))
        } else {
            ExitStatus(Kind::Code(libc::WEXITSTATUS(status)))
        }
    }

    /// Python's `exitcode`: the exit code, or minus the terminating signal's number.
    pub fn exitcode(self) -> i32 {
        match self.0 {
            Kind::Code(c) => c,
            Kind::Signal(s) => -s,
        }
    }

    /// The exit code, if the child exited (rather than being killed by a signal).
    pub fn code(self) -> Option<i32> {
        match self.0 {
            Kind::Code(c) => Some(c),
            Kind::Signal(_) => None,
        }
    }

    /// The signal that killed the child, if one did.
    pub fn signal(self) -> Option<i32> {
        match self.0 {
            Kind::Code(_) => None,
            Kind::Signal(s) => Some(s),
        }
    }

    /// Whether the child exited with code 0.
    pub fn success(self) -> bool {
        self.0 == Kind::Code(0)
    }
}

impl fmt::Display for ExitStatus {
    /// `exitcode=0`, `exitcode=-SIGTERM`, … (the way Python's `repr(Process)` shows it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Kind::Code(c) => write!(f, "exitcode={c}"),
            Kind::Signal(s) => match signal_name(s) {
                Some(name) => write!(f, "exitcode=-{name}"),
                None => write!(f, "exitcode=-{s}"),
            },
        }
    }
}

fn signal_name(sig: i32) -> Option<&'static str> {
    Some(match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_exitcode_values() {
        // W_EXITCODE(3, 0) and a SIGTERM death, as waitpid encodes them.
        let exited = ExitStatus::from_wait_status(3 << 8);
        assert_eq!(exited.exitcode(), 3);
        assert_eq!(exited.code(), Some(3));
        assert_eq!(exited.signal(), None);
        let killed = ExitStatus::from_wait_status(libc::SIGTERM);
        assert_eq!(killed.exitcode(), -15);
        assert_eq!(killed.to_string(), "exitcode=-SIGTERM");
        assert!(ExitStatus::from_wait_status(0).success());
    }
}
