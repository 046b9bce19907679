-- Migration 0024 began recording who created, reset or changed the role of
-- which administrator account, but only from then on: accounts made before
-- it counted as strangers for the two-person rule. The audit log already
-- says who did so (it is only read here; it stays append-only), and so do
-- the approved requests of the two-person rule (their requesters).
--
-- From the audit log: successful admin.create, admin.reset, admin.role,
-- admin.enable and admin.unlock records by an administrator, whose actor
-- is `admin:NAME` (a session) or `token:ID:NAME` (a token; a name has no
-- ':'), and whose target is the account's name.
INSERT INTO admin_control (controller, controlled, kind, at)
SELECT ctl.id, tgt.id, h.kind, h.at
FROM (
    SELECT l.at AS at,
           l.target AS target,
           CASE l.action
               WHEN 'admin.create' THEN 'create'
               WHEN 'admin.reset' THEN 'reset'
               WHEN 'admin.role' THEN 'role'
               WHEN 'admin.enable' THEN 'enable'
               ELSE 'unlock'
           END AS kind,
           CASE
               WHEN l.actor GLOB 'admin:*' THEN substr(l.actor, 7)
               -- What follows the last ':'.
               ELSE substr(l.actor, length(rtrim(l.actor, replace(l.actor, ':', ''))) + 1)
           END AS name
    FROM audit_log l
    WHERE l.action IN ('admin.create', 'admin.reset', 'admin.role', 'admin.enable', 'admin.unlock')
      AND l.outcome = 'success'
      AND (l.actor GLOB 'admin:?*' OR l.actor GLOB 'token:?*:?*')
) h
JOIN admins ctl ON ctl.name = h.name
JOIN admins tgt ON tgt.name = h.target
WHERE ctl.id != tgt.id
  AND NOT EXISTS (SELECT 1 FROM admin_control k
                  WHERE k.controller = ctl.id AND k.controlled = tgt.id
                    AND k.kind = h.kind AND k.at = h.at);

-- From approved requests: the requester of a create, reset or role grant
-- counts as having done it too (the approver is in the audit log above).
INSERT INTO admin_control (controller, controlled, kind, at)
SELECT a.requested_by_admin, tgt.id,
       CASE a.action
           WHEN 'create_admin' THEN 'create'
           WHEN 'reset_admin' THEN 'reset'
           ELSE 'role'
       END,
       a.decided_at
FROM approvals a
JOIN admins tgt
  ON tgt.name = CASE WHEN json_valid(a.params) THEN json_extract(a.params, '$.admin') END
WHERE a.status = 'approved'
  AND a.action IN ('create_admin', 'reset_admin', 'grant_owner', 'grant_role')
  AND a.requested_by_admin IS NOT NULL
  AND a.decided_at IS NOT NULL
  AND a.requested_by_admin != tgt.id
  AND NOT EXISTS (SELECT 1 FROM admin_control k
                  WHERE k.controller = a.requested_by_admin AND k.controlled = tgt.id
                    AND k.at = a.decided_at);

-- The two-person rule climbs from an account to those that control it.
CREATE INDEX admin_control_controlled ON admin_control (controlled, at);
