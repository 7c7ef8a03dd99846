"""edge.files: the one check-then-read rule for files a person names."""

from __future__ import annotations

import os
import socket

import pytest

from edge.files import (
    FileError,
    FileMissingError,
    FileTooLargeError,
    check_regular,
    read_regular,
)


def test_a_regular_file_is_read_whole_up_to_the_limit(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"x" * 100)
    assert read_regular(path, 100) == b"x" * 100
    check_regular(path)  # no error
    link = tmp_path / "link.txt"
    link.symlink_to(path)
    assert read_regular(link, 100) == b"x" * 100  # a link to a file is that file


def test_over_the_limit_is_refused_with_both_sizes(tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * 2_500_000)
    with pytest.raises(FileTooLargeError) as e:
        read_regular(path, 1_000_000)
    assert str(e.value) == f"{path}: 2.5 MB is over the 1 MB file size limit"


def test_missing_is_its_own_error(tmp_path):
    for call in (lambda p: read_regular(p, 10), check_regular):
        with pytest.raises(FileMissingError) as e:
            call(tmp_path / "absent")
        assert str(e.value) == f"{tmp_path / 'absent'}: no such file"
    check_regular(tmp_path / "absent", missing_ok=True)  # no error
    with pytest.raises(FileError, match="a folder"):
        check_regular(tmp_path, missing_ok=True)  # only a missing file is let through


def test_pipes_folders_sockets_and_devices_are_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)  # opening it for reading with blocking I/O would wait for a writer forever
    sock_path = tmp_path / "sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock_path))
    try:
        cases = [
            (fifo, "a named pipe"),
            (tmp_path, "a folder"),
            ("/dev/zero", "a character device"),  # would never end
        ]
        for path, kind in cases:
            for call in (lambda p: read_regular(p, 10), check_regular):
                with pytest.raises(FileError) as e:
                    call(path)
                assert str(e.value) == f"{path}: not a regular file ({kind})"
                assert not isinstance(e.value, FileMissingError)
        with pytest.raises(FileError, match="not a regular file \\(a socket\\)"):
            check_regular(sock_path)
    finally:
        server.close()
