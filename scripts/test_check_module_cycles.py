"""Self-test of check-module-cycles.py on small fake workspaces built on disk.

Run: python3 -m unittest scripts/test_check_module_cycles.py
"""
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'check-module-cycles.py')


class ModuleCycles(unittest.TestCase):
    def check(self, files, *args, members=('fake',)):
        """Write a workspace of `files` ({path: source}) and run the checker on it."""
        with tempfile.TemporaryDirectory() as root:
            quoted = ', '.join(f'"{m}"' for m in members)
            files = {'Cargo.toml': f'[workspace]\nmembers = [{quoted}]\n', **files}
            for m in members:
                files.setdefault(f'{m}/Cargo.toml', f'[package]\nname = "{m}"\nversion = "0.1.0"\n')
            for path, text in files.items():
                os.makedirs(os.path.dirname(os.path.join(root, path)) or root, exist_ok=True)
                with open(os.path.join(root, path), 'w') as f:
                    f.write(textwrap.dedent(text))
            run = subprocess.run([sys.executable, SCRIPT, '--root', root, *args],
                                 capture_output=True, text=True)
        self.assertEqual(run.stderr, '')
        return run.returncode, run.stdout

    def test_two_module_cycle(self):
        rc, out = self.check({
            'fake/src/lib.rs': 'mod a;\nmod b;\n',
            'fake/src/a.rs': 'use crate::b::X;\npub fn f() {}\n',
            'fake/src/b.rs': 'pub struct X;\n\npub fn g() {\n    crate::a::f();\n}\n',
        })
        self.assertEqual(rc, 1, out)
        self.assertIn('crate fake: cycle between modules: a -> b -> a', out)
        self.assertIn('a -> b: fake/src/a.rs:1', out)
        self.assertIn('b -> a: fake/src/b.rs:4', out)

    def test_parent_and_child_references_are_no_cycle(self):
        rc, out = self.check({
            'fake/src/lib.rs': 'pub mod p;\npub mod q;\n',
            'fake/src/p/mod.rs': """\
                mod child;
                pub use child::Y;
                pub use self::child::Z;
                pub struct X;
                fn f() { child::g(); self::child::g(); }
                """,
            'fake/src/p/child.rs': """\
                use super::X;
                use crate::p::X as Again;
                pub struct Y;
                pub struct Z;
                pub fn g() { super::f(); crate::p::f(); let _ = crate::q::T; }
                """,
            'fake/src/q.rs': 'pub struct T;\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n',
        })
        self.assertEqual(rc, 0, out)
        self.assertIn('module cycles: none in 1 crates', out)

    def test_cycle_between_nested_siblings(self):
        rc, out = self.check({
            'fake/src/lib.rs': 'pub mod a;\n',
            'fake/src/a.rs': 'pub mod x;\npub mod y;\npub struct Shared;\n',  # 2018: children in a/
            'fake/src/a/x.rs': 'use super::y::T;\nuse super::Shared;\npub fn f() {}\n',
            'fake/src/a/y.rs': 'pub struct T;\npub fn u() { super::x::f() }\n',
        })
        self.assertEqual(rc, 1, out)
        self.assertIn('cycle between modules: a::x -> a::y -> a::x', out)
        self.assertIn('a::x -> a::y: fake/src/a/x.rs:1', out)
        self.assertIn('a::y -> a::x: fake/src/a/y.rs:2', out)

    def test_comments_and_strings_are_ignored(self):
        rc, out = self.check({
            'fake/src/lib.rs': '//! Uses [`crate::a`] and `crate::b::X`.\nmod a;\nmod b;\n',
            'fake/src/a.rs': r'''
                /// See `crate::b::X`; // and crate::b again
                // use crate::b::X;
                /* crate::b::X /* nested crate::b */ still crate::b */
                pub const S: &str = "crate::b::X \" crate::b";
                pub const R: &str = r#"use crate::b::X; "crate::b""#;
                pub const C: char = '"';
                pub const Q: char = '\'';
                pub fn f<'a>(x: &'a str) -> &'a str { x }
                pub fn g() -> &'static str { "super::b" }
                ''',
            'fake/src/b.rs': 'pub struct X;\npub fn h() { crate::a::f("") ; }\n',
        })
        self.assertEqual(rc, 0, out)

    def test_nested_use_groups(self):
        rc, out = self.check({
            'fake/src/lib.rs': 'mod a;\nmod d;\nmod e;\n',
            'fake/src/a.rs': 'pub mod b { pub fn f() {} }\npub mod c {\n    pub fn g() {}\n}\n',
            'fake/src/d.rs': 'pub fn k() {}\n',
            'fake/src/e.rs': 'use crate::{\n    a::{b, c::{self, g}},\n    d,\n};\npub fn h() {}\n',
        }, '--graph')
        self.assertEqual(rc, 0, out)
        self.assertIn('e -> a: fake/src/e.rs:2 (+2 more)', out)
        self.assertIn('e -> d: fake/src/e.rs:3', out)
        # And the inline modules a::b and a::c are known: a path through them resolves.
        self.assertIn('crate fake: 6 modules, 2 edges', out)

    def test_acyclic_three_layers(self):
        rc, out = self.check({
            'fake/src/lib.rs': 'pub mod api;\npub mod service;\npub mod store;\n',
            'fake/src/api.rs': 'use crate::service::Service;\npub fn serve(s: Service) {}\n',
            'fake/src/service.rs': """\
                use crate::store::{self, Store};
                pub struct Service(Store);
                #[cfg(test)]
                mod tests {
                    use super::*;
                    #[test]
                    fn t() { let _ = crate::store::open(); }
                }
                """,
            'fake/src/store/mod.rs': 'mod sled;\npub use sled::open;\npub struct Store;\n',
            'fake/src/store/sled.rs': 'pub fn open() -> super::Store { super::Store }\n',
        }, '--graph')
        self.assertEqual(rc, 0, out)
        self.assertIn('api -> service: fake/src/api.rs:1', out)
        self.assertIn('service -> store: fake/src/service.rs:1 (+2 more)', out)
        self.assertIn('module cycles: none in 1 crates (6 modules, 2 edges)', out)

    def test_cycle_through_a_test_module(self):
        rc, out = self.check({
            'fake/src/lib.rs': 'mod a;\nmod b;\n',
            'fake/src/a.rs': 'pub fn f() {}\n#[cfg(test)]\nmod tests {\n    use crate::b::X;\n}\n',
            'fake/src/b.rs': 'pub struct X;\npub fn g() { crate::a::f() }\n',
        })
        self.assertEqual(rc, 1, out)
        self.assertIn('a -> b: fake/src/a.rs:4 [tests only]', out)

    def test_every_member_and_binary_is_a_crate(self):
        rc, out = self.check({
            'one/src/lib.rs': 'mod a;\n', 'one/src/a.rs': '',
            'two/src/main.rs': 'mod m;\nmod n;\nfn main() { m::f() }\n',
            'two/src/m.rs': 'pub fn f() { crate::n::g() }\n',
            'two/src/n.rs': 'pub fn g() { super::m::f() }\n',
            'two/src/bin/tool.rs': 'fn main() {}\n',
        }, members=('one', 'two'))
        self.assertEqual(rc, 1, out)
        self.assertIn('crate two: cycle between modules: m -> n -> m', out)
        self.assertIn('module cycles: 1 in 3 crates (6 modules, 2 edges)', out)


if __name__ == '__main__':
    unittest.main()
