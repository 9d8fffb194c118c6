#!/usr/bin/env python3
"""Python's multiprocessing, measured the way mproc-benches measures mproc.

Run by the report binary (`cargo xtask bench`) when python3 is present; prints one
`key value` line per figure. Usage: mp_bench.py [--quick]

* one-way throughput of 8-byte messages: Queue.put(int)/get(), Pipe send_bytes/recv_bytes;
* round trip (ping-pong through a duplex Pipe and through two Queues), both sides awake,
  and after the receiver idled 1 ms (percentiles in microseconds);
* Lock acquire + release, uncontended (nanoseconds).
"""
import multiprocessing as mp
import sys
import time

QUICK = "--quick" in sys.argv
N_TPUT = 2_000 if QUICK else 200_000
N_RTT = 200 if QUICK else 10_000
N_IDLE = 20 if QUICK else 500
N_LOCK = 10_000 if QUICK else 1_000_000
WARM = 100


def pct(samples, p):
    s = sorted(samples)
    k = max(1, -(-len(s) * p // 100))  # nearest rank
    return s[int(k) - 1]


def q_producer(q, n):
    for i in range(n):
        q.put(i)


def queue_tput():
    q = mp.Queue()
    p = mp.Process(target=q_producer, args=(q, WARM + N_TPUT))
    p.start()
    for _ in range(WARM):
        q.get()
    t = time.perf_counter()
    for i in range(N_TPUT):
        v = q.get()
        assert v == WARM + i
    dt = time.perf_counter() - t
    p.join(30)
    return N_TPUT / dt


def pipe_producer(w, n):
    msg = b"\x5a" * 8
    for _ in range(n):
        w.send_bytes(msg)


def pipe_tput():
    r, w = mp.Pipe(duplex=False)
    p = mp.Process(target=pipe_producer, args=(w, WARM + N_TPUT))
    p.start()
    w.close()
    for _ in range(WARM):
        r.recv_bytes()
    t = time.perf_counter()
    for _ in range(N_TPUT):
        r.recv_bytes()
    dt = time.perf_counter() - t
    p.join(30)
    return N_TPUT / dt


def pipe_echo(c, n):
    for _ in range(n):
        c.send_bytes(c.recv_bytes())


def round_trips(n, idle, echo, args, ping):
    """Starts `echo(*args, WARM + n)` in a child; times `ping(i)` (send i, get it back) for
    each i, after sleeping `idle` seconds first; returns the last n times in microseconds."""
    p = mp.Process(target=echo, args=args + (WARM + n,))
    p.start()
    out = []
    for i in range(WARM + n):
        if idle:
            time.sleep(idle)
        t = time.perf_counter_ns()
        ping(i)
        if i >= WARM:
            out.append((time.perf_counter_ns() - t) / 1000.0)
    p.join(30)
    return out


def pipe_rtt(n, idle):
    a, b = mp.Pipe()
    msg = b"\x5a" * 8

    def ping(_):
        a.send_bytes(msg)
        a.recv_bytes()

    return round_trips(n, idle, pipe_echo, (b,), ping)


def queue_echo(qin, qout, n):
    for _ in range(n):
        qout.put(qin.get())


def queue_rtt(n, idle):
    q1, q2 = mp.Queue(), mp.Queue()

    def ping(i):
        q1.put(i)
        assert q2.get() == i

    return round_trips(n, idle, queue_echo, (q1, q2), ping)


def lock_ns():
    lock = mp.Lock()
    acq, rel = lock.acquire, lock.release
    t = time.perf_counter()
    for _ in range(N_LOCK):
        acq()
        rel()
    return (time.perf_counter() - t) / N_LOCK * 1e9


def main():
    mp.set_start_method("fork")
    print("queue_tput_8B_msgs_per_s", queue_tput(), flush=True)
    print("pipe_tput_8B_msgs_per_s", pipe_tput(), flush=True)
    for name, fn in (("pipe", pipe_rtt), ("queue", queue_rtt)):
        for regime, n, idle in (("awake", N_RTT, 0), ("idle", N_IDLE, 0.001)):
            s = fn(n, idle)
            for p in (50, 99, 99.9):
                print(f"{name}_rtt_{regime}_p{p}_us", pct(s, p), flush=True)
    print("lock_uncontended_ns", lock_ns(), flush=True)


if __name__ == "__main__":
    main()
