-- One database per service that keeps records in Postgres (each runs its own migrations).
CREATE DATABASE examreg_identity;
CREATE DATABASE examreg_biometrics;
CREATE DATABASE examreg_profile;
