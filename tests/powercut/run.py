#!/usr/bin/env python3
"""Power-cut campaign for dm-remap (host side).

Boots the test VM repeatedly with main and spare as virtio disks backed by image files.
Each boot first verifies what the previous boot acknowledged, then writes until the
host kills QEMU at a random moment (a power cut). An acknowledged (O_DSYNC) write must
survive every cut; a write that was in flight may or may not.

    tests/powercut/run.py [--cuts N] [--seed S]

The first boot ends cleanly (remove, then exit: a clean reboot); then come N cut boots
and a final verifying boot. After every boot the host runs `remapctl meta check` on
the spare image: it must load (exit 0, or 1 when the cut landed inside a commit and
the next load repairs the torn copy).

Exit status 0 when every verification passed and the metadata loaded after every cut.
"""
import argparse
import itertools
import os
import random
import re
import select
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "out", "powercut")


REMAPCTL = os.path.join(ROOT, "rust", "target", "debug", "remapctl")
# Writes after the last ACK the host saw that may have reached the disk.
HORIZON = 64

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from guest import plan, sha  # noqa: E402  (the guest's write plan, recomputed here)


def meta_check():
    """`remapctl meta check` of the spare image: (exit code, first line)."""
    p = subprocess.run([REMAPCTL, "meta", "check", os.path.join(OUT, "spare.img")],
                       capture_output=True, text=True)
    return p.returncode, (p.stdout.splitlines() or ["?"])[0]


def kill_qemu_under(root):
    """SIGKILLs the QEMU processes descending from `root`; returns whether one was hit."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{d}/comm") as f:
                comm = f.read().strip()
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append((int(d), comm))
    hit, todo = False, [root]
    while todo:
        for pid, comm in children.get(todo.pop(), []):
            if comm.startswith("qemu-system"):
                try:
                    os.kill(pid, signal.SIGKILL)
                    hit = True
                except ProcessLookupError:
                    pass
            todo.append(pid)
    return hit


def boot(expect_path, seed, kill_after, limit=0):
    """Runs one VM boot; returns its output lines and whether it was cut."""
    env = dict(os.environ)
    env["VM_QEMU_OPTS"] = (
        f"-drive file={OUT}/main.img,format=raw,if=virtio,cache=writeback "
        f"-drive file={OUT}/spare.img,format=raw,if=virtio,cache=writeback"
    )
    env["VM_TIMEOUT"] = "300"
    cmd = [os.path.join(ROOT, "scripts", "vm-run"), "/usr/bin/python3", "tests/powercut/guest.py",
           os.path.relpath(expect_path, ROOT), str(seed), str(limit)]
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, start_new_session=True)
    lines = []
    deadline = None
    cut = False
    fd = p.stdout.fileno()
    buf = ""
    eof = False
    while not eof:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            chunk = os.read(fd, 65536)
            if not chunk:
                eof = True
            buf += chunk.decode("utf-8", "replace")
            *done, buf = buf.split("\n")
            for line in done:
                lines.append(line)
                if line.startswith("VERIFY ") and deadline is None and not limit:
                    deadline = time.time() + kill_after
        if deadline is not None and time.time() >= deadline:
            # The power cut: SIGKILL this boot's QEMU (only this one: other VMs may be
            # running on the machine), nothing gets flushed.
            cut = kill_qemu_under(p.pid)
            deadline = float("inf")
    p.wait()
    lines.extend(buf.split("\n"))
    return lines, cut


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cuts", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    os.makedirs(OUT, exist_ok=True)
    for name, mib in (("main.img", 64), ("spare.img", 16)):
        with open(os.path.join(OUT, name), "wb") as f:
            f.truncate(mib << 20)
    zero = sha(bytes(4096))
    unreadable = sha(b"")  # what the guest sees for a bad block nobody has written
    allowed = {}  # block -> set of contents acceptable after the next cut
    expect_path = os.path.join(OUT, "expect")
    failures = 0
    acked_total = 0
    torn = 0
    if not os.access(REMAPCTL, os.X_OK):
        print(f"# {REMAPCTL} missing: build it with `cd rust && cargo build`")
        return 1
    for trial in range(args.cuts + 2):
        with open(expect_path, "w") as f:
            for blk in sorted(allowed):
                f.write(f"{blk} {' '.join(sorted(allowed[blk]))}\n")
        clean = trial == 0
        last = trial == args.cuts + 1
        kill_after = rng.uniform(0.5, 6.0) if not last else 0.5
        seed = rng.randrange(1 << 15)
        lines, cut = boot(expect_path, seed, kill_after, 150 if clean else 0)
        if not clean and not cut:
            failures += 1
            print(f"# boot {trial}: the power cut did not happen (no QEMU found to kill)")
        code, verdict = meta_check()
        if code == 1:
            torn += 1
        if code not in (0, 1) or (clean and code != 0):
            failures += 1
            print(f"# boot {trial}: remapctl meta check FAILED ({code}): {verdict}")
        if clean and not any(l.startswith("CLEAN") for l in lines):
            failures += 1
            print("# boot 0: the clean run did not finish")
        verify = [l for l in lines if l.startswith("VERIFY ")]
        mism = [l for l in lines if l.startswith("MISMATCH")]
        status = next((l for l in lines if l.startswith("STATUS ")), "STATUS ?")
        if not verify or not verify[0].startswith("VERIFY ok"):
            failures += 1
            print(f"# boot {trial}: verification FAILED: {verify[:1]} {mism[:5]}")
            for l in lines[-30:]:
                print("#   " + l)
        else:
            print(f"# boot {trial}: verified {verify[0].split()[-1]} blocks; {status}")
        # What this boot observed becomes the baseline...
        for l in lines:
            m = re.match(r"SEEN (\d+) ([0-9a-f]+)", l)
            if m:
                allowed[int(m.group(1))] = {m.group(2)}
        # ...then what it wrote: an acknowledged write must be there; any later write
        # of the plan may be. The console's tail can be lost at the cut (QEMU holds
        # output the guest already counts as sent), so the plan, not the INTENT lines,
        # says what may have been in flight: the next HORIZON writes after the last ACK.
        acked = {}
        for l in lines:
            m = re.match(r"ACK (\d+) (\d+) ([0-9a-f]{16})\s*$", l)
            if m:
                acked[int(m.group(1))] = (int(m.group(2)), m.group(3))
        last_ack = max(acked, default=-1)
        end = last_ack + 1 + HORIZON
        if clean:
            end = min(end, 150)
        writes = [(b, sha(d)) for b, d in itertools.islice(plan(seed), end)]
        for i, (blk, h) in enumerate(writes):
            if i in acked:
                if acked[i] != (blk, h):
                    failures += 1
                    print(f"# boot {trial}: ACK {i} {acked[i]} is not write {i} of the plan {blk, h}")
                allowed[blk] = {h}
            else:
                allowed.setdefault(blk, {zero, unreadable}).add(h)
        acks = len(acked)
        acked_total += acks
        if clean:
            print(f"# boot {trial}: clean shutdown after {acks} acknowledged writes; meta check: {verdict}")
        elif not last:
            print(f"# boot {trial}: power cut after {kill_after:.1f} s, {acks} acknowledged writes; "
                  f"meta check: {verdict}")
    print(f"# {args.cuts} power cuts, {acked_total} acknowledged writes, {torn} cuts inside a commit, "
          f"{failures} failed verifications")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
