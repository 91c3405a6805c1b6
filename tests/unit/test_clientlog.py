from notifyd.tools import clientlog

FAIL = ("FAIL [rdkafka#producer-1] [thrd:db:9092/bootstrap]: db:9092/bootstrap: Connect to ipv4#10.0.0.7:9092 "
        "failed: Connection refused (after 0ms in state CONNECT)")


def test_the_last_error_line_is_kept_without_librdkafkas_prefix():
    clientlog.forget()
    logger = clientlog.client_logger()
    logger.error("FAIL [rdkafka#producer-1] [thrd:db:9092/bootstrap]: an earlier one")
    logger.error(FAIL)
    logger.warning("CONFWARN [rdkafka#producer-1] [thrd:app]: a warning says nothing of why")
    assert clientlog.last_error() == ("db:9092/bootstrap: Connect to ipv4#10.0.0.7:9092 failed: Connection refused "
                                      "(after 0ms in state CONNECT)")


def test_nothing_is_printed_and_forget_starts_afresh(capsys):
    logger = clientlog.client_logger()
    logger.error(FAIL)
    assert capsys.readouterr().err == ""
    clientlog.forget()
    assert clientlog.last_error() is None
    assert clientlog.client_logger() is logger
    assert sum(isinstance(handler, clientlog._LastError) for handler in logger.handlers) == 1
