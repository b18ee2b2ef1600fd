// Package auth decides who may do what: it reads the credentials file given with -auth (rqlite's format: a
// JSON array of users with passwords and permissions, "*" standing for everyone), checks passwords (plain
// text or bcrypt hashes, always in constant time) and answers whether a caller holds a permission.
package auth
