"""Who a notification goes to, what it says and when: the directory, templates, preparation, quiet hours.

Run inside the channel process; the directory's and templates' checks also run in
``validate-config``. May import ``notifyd.api``, ``notifyd.config.settings`` and
``notifyd.records``.
"""
