"""notifyd's test suite (``pytest`` from the repository root collects all of it).

unit/         no broker: pure logic, handlers against real local provider and SMTP servers (~15 s)
integration/  against the real broker (embedded, or NOTIFYD_TEST_BOOTSTRAP): commands, the
              channel process, the daemon; every test that uses the broker is marked ``kafka``
reliability/  the reliability suite (marked ``reliability``): kills, outages, malformed input;
              its figures go to .notifyd/results/, or to $NOTIFYD_RESULTS_DIR (``make bench``)
kit/          the helpers all three share; fixtures are in the conftest.py files
"""
