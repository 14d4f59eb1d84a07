//! `#[ktest]`: declare a kernel test in one place, with its settings beside it.
//!
//! ```ignore
//! use kernel::ktest::{ktest, T};
//!
//! #[ktest(smp = [1, 2, 4], timeout = 30)]
//! fn spawn_many(t: &mut T) {
//!     t.log(format_args!("spawning"));
//!     ...
//! }
//! ```
//!
//! Settings (all optional):
//!
//! | setting | meaning | default |
//! |---|---|---|
//! | `smp = [1, 2, 4]` | core counts: one trial per count | `[1, 2, 4]` |
//! | `also = [(4, "schedrandom=1")]` | extra trials: (cores, boot parameters) | none |
//! | `timeout = 30` | seconds per trial (times the runner's `--timeout-multiplier`) | 90, 120 at 4+ cores |
//! | `params = "gomaxprocs=1 hz=100"` | boot parameters of every trial | none |
//! | `should_panic = "text"` | passes if it panics with a message containing `text` | |
//! | `fatal = "text"` | passes if it ends in a fatal error whose report contains `text` | |
//! | `output = ["text", "/regex/"]` | each must be in a serial line (or match one); `{smp}`, `{case}` are replaced | |
//! | `tags = ["slow"]` | tags, for `--tags`/`--skip-tags` | |
//! | `min_cpus = 2` | trials with fewer cores are skipped | |
//! | `skip_params = "schedrandom=1"` | skipped when a trial's parameters contain this word | |
//! | `cases = ["a", ("b", "hz=100")]` | a parameterized test: one trial per case (`t.case()`) | |
//! | `mem = 64` | guest memory in MiB | runner's default |
//! | `exclusive` | no other trial runs at the same time (timing-sensitive tests) | |
//! | `smp_only` | the test holds only at its `smp` counts: the runner's `--smp` skips it at others | |
//! | `uefi` | boot through UEFI | BIOS |
//!
//! The macro keeps the function and adds one entry to the `KTESTS` linker
//! section: the settings as plain text (see `gmp_core::ktest`) and the
//! function pointer. The function takes `&mut T` or nothing.

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::{format_ident, quote};
use syn::punctuated::Punctuated;
use syn::{parse_macro_input, Error, Expr, ExprLit, ItemFn, Lit, Meta, Token};

#[proc_macro_attribute]
pub fn ktest(attr: TokenStream, item: TokenStream) -> TokenStream {
    let args = parse_macro_input!(attr with Punctuated::<Meta, Token![,]>::parse_terminated);
    let func = parse_macro_input!(item as ItemFn);
    match expand(args, func) {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn lit_str(e: &Expr) -> Result<String, Error> {
    match e {
        Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) => Ok(s.value()),
        _ => Err(Error::new_spanned(e, "expected a string literal")),
    }
}

fn lit_int(e: &Expr) -> Result<u64, Error> {
    match e {
        Expr::Lit(ExprLit { lit: Lit::Int(i), .. }) => i.base10_parse(),
        _ => Err(Error::new_spanned(e, "expected an integer literal")),
    }
}

fn array(e: &Expr) -> Result<Vec<&Expr>, Error> {
    match e {
        Expr::Array(a) => Ok(a.elems.iter().collect()),
        _ => Err(Error::new_spanned(e, "expected a list: [..]")),
    }
}

/// A value that goes into one `key:value` line: no newline, no NUL.
fn clean(e: &Expr, v: String) -> Result<String, Error> {
    if v.contains(['\n', '\r', '\0']) {
        return Err(Error::new_spanned(e, "newlines and NULs are not allowed here"));
    }
    Ok(v)
}

/// Boot parameters: `key=value` words with `[a-z0-9_]+` keys and no commas.
fn params(e: &Expr, v: &str) -> Result<(), Error> {
    for w in v.split_whitespace() {
        let ok = match w.split_once('=') {
            Some((k, val)) => {
                !k.is_empty()
                    && k.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
                    && !val.is_empty()
                    && !val.contains(',')
            }
            None => false,
        };
        if !ok {
            return Err(Error::new_spanned(e, format!("`{w}` is not a boot parameter (key=value, keys [a-z0-9_]+, no commas)")));
        }
        if matches!(w.split_once('=').map(|p| p.0), Some("test" | "case" | "seed")) {
            return Err(Error::new_spanned(e, "test=, case= and seed= are set by the runner"));
        }
    }
    Ok(())
}

fn expand(args: Punctuated<Meta, Token![,]>, func: ItemFn) -> Result<proc_macro2::TokenStream, Error> {
    let name = func.sig.ident.clone();
    let mut lines: Vec<String> = Vec::new();
    let mut expect: Option<(&str, String)> = None;
    for m in &args {
        let key = m.path().get_ident().map(|i| i.to_string()).unwrap_or_default();
        match (key.as_str(), m) {
            ("exclusive" | "uefi" | "smp_only", Meta::Path(_)) => lines.push(format!("{key}:1")),
            (_, Meta::NameValue(nv)) => {
                let v = &nv.value;
                match key.as_str() {
                    "smp" => {
                        let mut n = Vec::new();
                        for e in array(v)? {
                            let c = lit_int(e)?;
                            if !(1..=255).contains(&c) {
                                return Err(Error::new_spanned(e, "a core count is 1..=255"));
                            }
                            n.push(c.to_string());
                        }
                        if n.is_empty() {
                            return Err(Error::new_spanned(v, "at least one core count"));
                        }
                        lines.push(format!("smp:{}", n.join(",")));
                    }
                    "also" => {
                        for e in array(v)? {
                            let Expr::Tuple(t) = e else {
                                return Err(Error::new_spanned(e, "expected (cores, \"key=value ...\")"));
                            };
                            let el: Vec<&Expr> = t.elems.iter().collect();
                            let [c, p] = el[..] else {
                                return Err(Error::new_spanned(e, "expected (cores, \"key=value ...\")"));
                            };
                            let (c, p) = (lit_int(c)?, lit_str(p)?);
                            params(e, &p)?;
                            lines.push(format!("also:{c} {}", p.trim()));
                        }
                    }
                    "timeout" | "min_cpus" | "mem" => lines.push(format!("{key}:{}", lit_int(v)?)),
                    "params" => {
                        let p = lit_str(v)?;
                        params(v, &p)?;
                        lines.push(format!("params:{}", p.trim()));
                    }
                    "skip_params" => {
                        let p = lit_str(v)?;
                        params(v, &p)?;
                        lines.push(format!("skip_params:{}", p.trim()));
                    }
                    "should_panic" | "fatal" => {
                        if expect.is_some() {
                            return Err(Error::new_spanned(m, "only one of should_panic and fatal"));
                        }
                        let t = clean(v, lit_str(v)?)?;
                        expect = Some((if key == "fatal" { "fatal" } else { "panic" }, t));
                    }
                    "output" => {
                        for e in array(v)? {
                            lines.push(format!("output:{}", clean(e, lit_str(e)?)?));
                        }
                    }
                    "tags" => {
                        let mut tags = Vec::new();
                        for e in array(v)? {
                            let t = lit_str(e)?;
                            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
                                return Err(Error::new_spanned(e, "a tag is [A-Za-z0-9_-]+"));
                            }
                            tags.push(t);
                        }
                        lines.push(format!("tags:{}", tags.join(",")));
                    }
                    "cases" => {
                        for e in array(v)? {
                            let (cname, p) = match e {
                                Expr::Tuple(t) if t.elems.len() == 2 => (lit_str(&t.elems[0])?, lit_str(&t.elems[1])?),
                                _ => (lit_str(e)?, String::new()),
                            };
                            if cname.is_empty()
                                || cname.len() > 64
                                || !cname.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
                            {
                                return Err(Error::new_spanned(e, "a case name is [a-z0-9_-]{1,64}"));
                            }
                            params(e, &p)?;
                            lines.push(format!("case:{cname} {}", p.trim()).trim_end().to_string());
                        }
                    }
                    _ => return Err(Error::new_spanned(m, format!("unknown #[ktest] setting `{key}`"))),
                }
            }
            _ => return Err(Error::new_spanned(m, format!("unknown #[ktest] setting `{key}`"))),
        }
    }
    let (kind, text) = expect.unwrap_or(("pass", String::new()));
    lines.push(format!("expect:{kind}"));
    if !text.is_empty() {
        lines.push(format!("expect_text:{text}"));
    }
    let rest: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let fname = name.to_string();

    let run = match func.sig.inputs.len() {
        0 => quote! { { fn __ktest_wrapper(_: &mut ::kernel::ktest::T) { #name() } __ktest_wrapper } },
        1 => quote! { #name },
        _ => return Err(Error::new_spanned(&func.sig, "a #[ktest] function takes `&mut T` or nothing")),
    };
    if func.sig.asyncness.is_some() || !func.sig.generics.params.is_empty() {
        return Err(Error::new_spanned(&func.sig, "a #[ktest] function is a plain fn"));
    }
    let entry = format_ident!("__KTEST_{}", name, span = Span::call_site());
    Ok(quote! {
        #func

        #[::kernel::ktest::linkme::distributed_slice(::kernel::ktest::KTESTS)]
        #[linkme(crate = ::kernel::ktest::linkme)]
        #[allow(non_upper_case_globals)]
        static #entry: ::kernel::ktest::KTest = ::kernel::ktest::KTest {
            meta: ::kernel::ktest::meta_bytes(::core::concat!(
                "ktest v1\nmodule:", ::core::module_path!(),
                "\nfn:", #fname,
                "\nfile:", ::core::file!(),
                "\nline:", ::core::line!(),
                "\n", #rest
            )),
            run: #run,
        };
    })
}
