import os
import stat

import pytest

from toolkit.io import atomic_path, atomic_write_json, atomic_write_text, sha256_file


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path):
    dest = tmp_path / "sub" / "a.txt"
    atomic_write_text(dest, "one")
    atomic_write_text(dest, "two")
    assert dest.read_text() == "two"
    assert [p.name for p in dest.parent.iterdir()] == ["a.txt"]


def test_failed_write_keeps_the_old_file(tmp_path):
    dest = tmp_path / "a.json"
    atomic_write_json(dest, {"x": 1})
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert dest.read_text().strip().startswith("{") and '"x": 1' in dest.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_written_files_get_the_umask_mode_not_0600(tmp_path):
    dest = tmp_path / "report.html"
    atomic_write_text(dest, "<html></html>")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o666 & ~mask


def test_sha256_file(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    assert sha256_file(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_exclusive_lock_refuses_a_second_process_and_dies_with_its_holder(tmp_path):
    import signal
    import subprocess
    import sys

    from toolkit.errors import AdtkError
    from toolkit.io import exclusive_lock

    lock = tmp_path / "out" / ".lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom toolkit.io import exclusive_lock\n"
         "with exclusive_lock(sys.argv[1], 'busy'):\n    print('held', flush=True)\n"
         "    time.sleep(120)\n", str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        busy = rf"out is busy \(held by process {holder.pid} on "
        with pytest.raises(AdtkError, match=busy), exclusive_lock(lock, "out is busy"):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)  # as kill -9: no clean-up code runs
        holder.wait()
    with exclusive_lock(lock, "out is busy"):  # the kernel released it with its process
        assert lock.read_text().startswith(f"{os.getpid()} on ")
