// Package apicheck holds a test of the public API's documentation: every
// exported identifier of the library packages has a doc comment, and no
// exported function or method returns an unexported type.
package apicheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var packages = []string{"kernels", "model", "model/safetensors", "tokenize", "data", "train", "predict", "hub"}

func TestExportedIdentifiersDocumented(t *testing.T) {
	for _, dir := range packages {
		path := filepath.Join("..", "..", dir)
		if _, err := os.Stat(path); err != nil {
			continue
		}
		fset := token.NewFileSet()
		pkgs, err := parser.ParseDir(fset, path, func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		for _, pkg := range pkgs {
			for name, f := range pkg.Files {
				checkFile(t, fset, filepath.Base(name), dir, f)
			}
		}
	}
}

func checkFile(t *testing.T, fset *token.FileSet, file, dir string, f *ast.File) {
	where := func(n ast.Node) string { return dir + "/" + file + ":" + itoa(fset.Position(n.Pos()).Line) }
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() || (d.Recv != nil && !exportedRecv(d.Recv)) {
				continue
			}
			if d.Doc == nil {
				t.Errorf("%s: exported %s has no doc comment", where(d), d.Name.Name)
			}
			if d.Type.Results != nil {
				for _, r := range d.Type.Results.List {
					if id := baseIdent(r.Type); id != nil && !id.IsExported() && !builtin[id.Name] {
						t.Errorf("%s: exported %s returns unexported type %s", where(d), d.Name.Name, id.Name)
					}
				}
			}
		case *ast.GenDecl:
			for _, spec := range d.Specs {
				switch s := spec.(type) {
				case *ast.TypeSpec:
					if s.Name.IsExported() && d.Doc == nil && s.Doc == nil {
						t.Errorf("%s: exported type %s has no doc comment", where(s), s.Name.Name)
					}
				case *ast.ValueSpec:
					for _, n := range s.Names {
						if n.IsExported() && d.Doc == nil && s.Doc == nil && s.Comment == nil {
							t.Errorf("%s: exported %s has no doc comment", where(s), n.Name)
						}
					}
				}
			}
		}
	}
}

func exportedRecv(fl *ast.FieldList) bool {
	id := baseIdent(fl.List[0].Type)
	return id != nil && id.IsExported()
}

// baseIdent strips pointers, slices and maps down to a named type.
func baseIdent(e ast.Expr) *ast.Ident {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.ArrayType:
			e = x.Elt
		case *ast.MapType:
			e = x.Value
		case *ast.Ident:
			return x
		default:
			return nil
		}
	}
}

var builtin = map[string]bool{"bool": true, "string": true, "int": true, "int32": true, "int64": true, "uint16": true,
	"uint32": true, "uint64": true, "float32": true, "float64": true, "error": true, "byte": true, "rune": true, "any": true, "uint8": true}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
