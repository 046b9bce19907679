-- Who created, reset or changed the role of which administrator account,
-- and when. For a while after, the two accounts count as one person for
-- the two-person rule (mamori_core::approvals): one of them cannot approve
-- the other's requests.
CREATE TABLE admin_control (
    controller TEXT NOT NULL,
    controlled TEXT NOT NULL,
    kind       TEXT NOT NULL,
    at         INTEGER NOT NULL
);
CREATE INDEX admin_control_pair ON admin_control (controller, controlled, at);
