"""The config file, from YAML text to the frozen settings every process runs with.

Holds: YAML parsing with positions (``yamlsource``), ``${VAR}`` substitution (``envvars``),
the schema and semantic checks (``validation``), findings with ``file:line:col``
(``findings``), the settings dataclasses (``settings``), ``load_config``/``check_config``
(``loading``) and every librdkafka configuration built from the settings (``kafka``).

Pure: no I/O beyond reading the file. May import ``notifyd.api``, ``notifyd.schemas``,
``notifyd.redaction``, ``notifyd.handlers`` (their option schemas) and the recipients'
own settings checks; never the daemon, the channel process, the tools or the commands.
"""
