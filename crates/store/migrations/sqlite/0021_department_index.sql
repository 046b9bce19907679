-- A blind index of each person's department (HMAC with the index key,
-- like e-mail and user ID), so device groups can follow departments
-- without decrypting anyone. Filled for existing people at the next start.
ALTER TABLE people ADD COLUMN department_index TEXT;
CREATE INDEX people_department ON people (department_index);
