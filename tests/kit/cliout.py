"""What an operator command prints when its broker does not answer."""

from __future__ import annotations


def assert_one_line_saying_why(err: str) -> None:
    """One line, ending with the cause librdkafka saw; none of librdkafka's own ``%3|…|FAIL|…`` lines.

    Read with ``capfd``: librdkafka writes its lines to file descriptor 2, past ``sys.stderr``.
    """
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "broker unreachable" in lines[0] and "Connection refused" in lines[0], err
