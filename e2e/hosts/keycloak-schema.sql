-- A stand-in for the Keycloak database of an oVirt 4.5 Manager
-- (ovirt_engine_keycloak; engine-setup provisions it, the Keycloak that runs
-- inside the engine's WildFly creates its schema with Liquibase), written
-- for migrun's tests from the traits that matter to a move:
--   * Liquibase's databasechangelog has no primary key and no unique index
--     (logical replication needs REPLICA IDENTITY FULL for it);
--   * realms, clients, users and roles tied by foreign keys, several with
--     ON DELETE CASCADE; text primary keys (UUIDs as varchar(36));
--   * sessions and events the running engine writes: offline_user_session
--     (refreshed on every token refresh) and event_entity (login events).
-- Run as the database's owner (SET ROLE ovirt_engine_keycloak). Not
-- Keycloak's schema: the tables the stand-in engine uses and a few around
-- them, shaped like Keycloak's.

CREATE TABLE databasechangelog (
    id varchar(255) NOT NULL,
    author varchar(255) NOT NULL,
    filename varchar(255) NOT NULL,
    dateexecuted timestamp NOT NULL,
    orderexecuted integer NOT NULL,
    exectype varchar(10) NOT NULL,
    md5sum varchar(35),
    description varchar(255),
    comments varchar(255),
    tag varchar(255),
    liquibase varchar(20),
    contexts varchar(255),
    labels varchar(255),
    deployment_id varchar(10)
);
CREATE TABLE databasechangeloglock (
    id integer PRIMARY KEY,
    locked boolean NOT NULL,
    lockgranted timestamp,
    lockedby varchar(255)
);
INSERT INTO databasechangeloglock VALUES (1, false, NULL, NULL);
INSERT INTO databasechangelog (id, author, filename, dateexecuted, orderexecuted, exectype, md5sum, description, liquibase, deployment_id)
SELECT v || '-' || g, 'keycloak', 'META-INF/jpa-changelog-' || v || '.xml', now() - interval '90 days', g, 'EXECUTED',
       '8:' || left(md5(v || g), 32), 'createTable', '4.8.0', '1234567890'
FROM generate_series(1, 120) g, (VALUES ('1.0.0.Final'), ('15.0.2')) v(v);

CREATE TABLE realm (
    id varchar(36) PRIMARY KEY,
    name varchar(255) UNIQUE,
    enabled boolean NOT NULL DEFAULT false,
    ssl_required varchar(255),
    access_token_lifespan integer,
    sso_idle_timeout integer,
    offline_session_idle_timeout integer DEFAULT 0
);
CREATE TABLE realm_attribute (
    name varchar(255) NOT NULL,
    realm_id varchar(36) NOT NULL REFERENCES realm (id),
    value text,
    PRIMARY KEY (name, realm_id)
);
CREATE TABLE client (
    id varchar(36) PRIMARY KEY,
    client_id varchar(255),
    realm_id varchar(36) REFERENCES realm (id),
    enabled boolean NOT NULL DEFAULT false,
    secret varchar(255),
    protocol varchar(255),
    public_client boolean NOT NULL DEFAULT false,
    UNIQUE (realm_id, client_id)
);
CREATE TABLE redirect_uris (
    client_id varchar(36) NOT NULL REFERENCES client (id),
    value varchar(255) NOT NULL,
    PRIMARY KEY (client_id, value)
);
CREATE TABLE keycloak_role (
    id varchar(36) PRIMARY KEY,
    client_realm_constraint varchar(255),
    client_role boolean NOT NULL DEFAULT false,
    name varchar(255),
    realm_id varchar(255),
    client varchar(36),
    realm varchar(36) REFERENCES realm (id),
    UNIQUE (name, client_realm_constraint)
);
CREATE TABLE user_entity (
    id varchar(36) PRIMARY KEY,
    email varchar(255),
    enabled boolean NOT NULL DEFAULT false,
    first_name varchar(255),
    last_name varchar(255),
    realm_id varchar(255),
    username varchar(255),
    created_timestamp bigint,
    UNIQUE (realm_id, username)
);
CREATE INDEX idx_user_email ON user_entity (email);
CREATE TABLE credential (
    id varchar(36) PRIMARY KEY,
    type varchar(255),
    user_id varchar(36) REFERENCES user_entity (id) ON DELETE CASCADE,
    created_date bigint,
    secret_data text,
    credential_data text,
    priority integer
);
CREATE TABLE user_role_mapping (
    role_id varchar(255) NOT NULL,
    user_id varchar(36) NOT NULL REFERENCES user_entity (id) ON DELETE CASCADE,
    PRIMARY KEY (role_id, user_id)
);
CREATE TABLE user_attribute (
    name varchar(255) NOT NULL,
    value varchar(255),
    user_id varchar(36) NOT NULL REFERENCES user_entity (id) ON DELETE CASCADE,
    id varchar(36) PRIMARY KEY DEFAULT md5(random()::text)::uuid::text
);
CREATE TABLE offline_user_session (
    user_session_id varchar(36) NOT NULL,
    user_id varchar(255) NOT NULL,
    realm_id varchar(36) NOT NULL,
    created_on integer NOT NULL,
    offline_flag varchar(4) NOT NULL,
    data text,
    last_session_refresh integer NOT NULL DEFAULT 0,
    PRIMARY KEY (user_session_id, offline_flag)
);
CREATE INDEX idx_offline_uss_createdon ON offline_user_session (created_on);
CREATE TABLE offline_client_session (
    user_session_id varchar(36) NOT NULL,
    client_id varchar(255) NOT NULL,
    offline_flag varchar(4) NOT NULL,
    timestamp integer,
    data text,
    client_storage_provider varchar(36) NOT NULL DEFAULT 'local',
    external_client_id varchar(255) NOT NULL DEFAULT 'local',
    PRIMARY KEY (user_session_id, client_id, client_storage_provider, external_client_id, offline_flag)
);
CREATE TABLE event_entity (
    id varchar(36) PRIMARY KEY,
    client_id varchar(255),
    details_json varchar(2550),
    error varchar(255),
    ip_address varchar(255),
    realm_id varchar(255),
    session_id varchar(255),
    event_time bigint,
    type varchar(255),
    user_id varchar(255)
);
CREATE INDEX idx_event_time ON event_entity (realm_id, event_time);
CREATE TABLE admin_event_entity (
    id varchar(36) PRIMARY KEY,
    admin_event_time bigint,
    realm_id varchar(255),
    operation_type varchar(255),
    resource_path varchar(2550),
    representation text,
    error varchar(255)
);
CREATE TABLE migration_model (
    id varchar(36) PRIMARY KEY,
    version varchar(36),
    update_time bigint NOT NULL DEFAULT 0
);

-- oVirt's realm, its clients and its admin user.
INSERT INTO realm VALUES ('ovirt-internal', 'ovirt-internal', true, 'external', 300, 1800, 2592000),
                         ('master', 'master', true, 'external', 60, 1800, 2592000);
INSERT INTO realm_attribute SELECT 'attr' || g, 'ovirt-internal', 'value ' || g FROM generate_series(1, 40) g;
INSERT INTO client (id, client_id, realm_id, enabled, protocol, public_client)
VALUES (md5('ovirt-engine-internal')::uuid::text, 'ovirt-engine-internal', 'ovirt-internal', true, 'openid-connect', false),
       (md5('grafana')::uuid::text, 'ovirt-engine-grafana', 'ovirt-internal', true, 'openid-connect', false),
       (md5('admin-cli')::uuid::text, 'admin-cli', 'master', true, 'openid-connect', true);
INSERT INTO redirect_uris SELECT id, 'https://engine.example.com/*' FROM client;
INSERT INTO keycloak_role (id, client_realm_constraint, name, realm)
SELECT md5('role' || g)::uuid::text, 'ovirt-internal', 'role' || g, 'ovirt-internal' FROM generate_series(1, 20) g;
INSERT INTO user_entity (id, email, enabled, username, realm_id, created_timestamp)
SELECT md5('user' || g)::uuid::text, 'user' || g || '@example.com', true, CASE g WHEN 0 THEN 'admin' ELSE 'user' || g END,
       'ovirt-internal', 1700000000000 + g
FROM generate_series(0, 200) g;
INSERT INTO credential (id, type, user_id, created_date, secret_data, priority)
SELECT md5('cred' || g)::uuid::text, 'password', md5('user' || g)::uuid::text, 1700000000000, '{"value":"x"}', 10
FROM generate_series(0, 200) g;
INSERT INTO user_role_mapping SELECT md5('role' || (g % 20 + 1))::uuid::text, md5('user' || g)::uuid::text FROM generate_series(0, 200) g;
-- The engine's own offline session, which the stand-in engine refreshes.
INSERT INTO offline_user_session VALUES ('standin', md5('user0')::uuid::text, 'ovirt-internal', 1700000000, '1', '{}', 0);
INSERT INTO event_entity (id, client_id, realm_id, event_time, type, user_id)
SELECT md5('event' || g)::uuid::text, 'ovirt-engine-internal', 'ovirt-internal', 1700000000000 + g, 'LOGIN', md5('user' || g % 200)::uuid::text
FROM generate_series(1, 2000) g;
INSERT INTO migration_model VALUES ('mm1', '15.0.2', 1700000000);
