"""The Streamlit dashboard: ``app.py`` is the entry point (``make dashboard``), ``views/`` one
script per page, ``data`` the only module that talks to the warehouse."""
