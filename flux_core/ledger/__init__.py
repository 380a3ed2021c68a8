"""Where runs are written down and read back: the SQLite ledger, History's queries, sweeps."""
