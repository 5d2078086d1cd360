"""Small tools for the police and clinic data managers: pseudonymise identifiers with the
shared secret key, write the manifest, and check a folder before sending it."""
