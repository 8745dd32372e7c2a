package server

import "embed"

// brand holds the files that brand sspr's pages for this provider (under
// "brand/"): they replace sspr's embedded static/brand.css through
// plugin.Config.Templates.
//
//go:embed brand/static/brand.css
var brand embed.FS
