-- A passkey registered in a recovery session (password + recovery code)
-- is usable only from this time, or once a second owner approves (the
-- column is then cleared). NULL: usable.
ALTER TABLE admin_webauthn ADD COLUMN usable_from INTEGER;
