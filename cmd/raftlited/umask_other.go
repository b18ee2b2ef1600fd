//go:build !unix

package main

func restrictFileModes() {}
