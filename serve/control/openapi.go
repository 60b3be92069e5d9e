package control

import _ "embed"

// openAPI describes the API (OpenAPI 3.1), served at
// /api/v1/openapi.json.
//
//go:embed openapi.json
var openAPI []byte
