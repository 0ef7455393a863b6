"""What every test module shares: databases, seeded data, accounts, servers, task polling.

Test modules import from here (and from registrar), never from one another.
"""
