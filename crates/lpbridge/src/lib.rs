//! lpbridge application library (CLI now; unified IAM, SCIM, events and MSP service later).
