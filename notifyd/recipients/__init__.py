"""Who a notification goes to and what it says: the user directory, templates, preparation.

Run inside the channel process; the directory's and templates' checks also run in
``validate-config``. May import ``notifyd.api`` and ``notifyd.config.settings``.
"""
