//! Checks an uploaded component's exports against the economy world.
//!
//! Instantiating a component checks its imports against the linker, but an
//! export is only type-checked when an instance is loaded, that is on every
//! request: a component whose `purchase` returns the wrong type would pass
//! the upload and then fail every purchase. So the upload compares each
//! function the world exports with the component's, structurally (records
//! and variants by their fields and cases), and names both types when they
//! differ.

use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::component::types::{ComponentFunc, ComponentItem, Type};

/// How deep a type is spelled out in an error message.
const SPELLED_DEPTH: usize = 3;

/// Checks that `component` exports every function of every interface that
/// `world` (a component implementing the economy world) exports, with the
/// same parameter and result types. The error is for the uploader.
pub fn check_exports(engine: &Engine, world: &Component, component: &Component) -> Result<(), String> {
    let expected = world.component_type();
    let found = component.component_type();
    for (interface_name, interface) in expected.exports(engine) {
        let ComponentItem::ComponentInstance(interface) = interface.ty else { continue };
        let theirs = match compatible_export(engine, &found, interface_name) {
            Some(ComponentItem::ComponentInstance(theirs)) => theirs,
            _ => return Err(format!("the component does not export the interface {interface_name}")),
        };
        for (function, item) in interface.exports(engine) {
            let ComponentItem::ComponentFunc(wanted) = item.ty else { continue };
            let Some(ComponentItem::ComponentFunc(given)) = theirs.get_export(engine, function).map(|export| export.ty)
            else {
                return Err(format!("{interface_name} does not export the function {function}"));
            };
            if let Some(difference) = difference(&wanted, &given) {
                return Err(format!("{interface_name}: function {function} {difference}"));
            }
        }
    }
    Ok(())
}

/// The component's export of `name` (`economy:plugin/rules@0.1.1`), or of
/// the same interface at a semver-compatible version (`@0.1.0`: a component
/// built against an earlier 0.1 contract), as wasmtime links them.
fn compatible_export(
    engine: &Engine,
    found: &wasmtime::component::types::Component,
    name: &str,
) -> Option<ComponentItem> {
    if let Some(export) = found.get_export(engine, name) {
        return Some(export.ty);
    }
    let (interface, version) = name.split_once('@')?;
    let track = semver_track(version)?;
    found.exports(engine).find_map(|(theirs, export)| {
        let (their_interface, their_version) = theirs.split_once('@')?;
        (their_interface == interface && semver_track(their_version) == Some(track)).then_some(export.ty)
    })
}

/// The versions compatible with `version`: the same major, or below 1.0
/// the same minor.
fn semver_track(version: &str) -> Option<(u64, u64)> {
    let mut parts = version.split(['.', '-', '+']);
    let major: u64 = parts.next()?.parse().ok()?;
    let minor: u64 = parts.next()?.parse().ok()?;
    Some(if major == 0 { (0, minor) } else { (major, 0) })
}

/// What differs between the world's function and the component's, in WIT
/// syntax: the first parameter or the result that is not the same type.
fn difference(wanted: &ComponentFunc, given: &ComponentFunc) -> Option<String> {
    let (wanted_params, given_params): (Vec<_>, Vec<_>) = (wanted.params().collect(), given.params().collect());
    if wanted_params.len() != given_params.len() {
        return Some(format!("takes {} parameters; the world declares {}", given_params.len(), wanted_params.len()));
    }
    for ((name, want), (_, give)) in wanted_params.iter().zip(&given_params) {
        if want != give {
            return Some(format!(
                "takes `{name}: {}`; the world declares `{name}: {}`",
                spell(give, 0),
                spell(want, 0)
            ));
        }
    }
    let results = |func: &ComponentFunc| func.results().collect::<Vec<_>>();
    let (want, give) = (results(wanted), results(given));
    if want != give {
        let spelled = |types: &[Type]| types.iter().map(|ty| spell(ty, 0)).collect::<Vec<_>>().join(", ");
        return Some(format!("returns `{}`; the world declares `{}`", spelled(&give), spelled(&want)));
    }
    None
}

/// A type in WIT syntax. Records and variants have no names in a component's
/// types, so they are spelled out by their fields and cases.
fn spell(ty: &Type, depth: usize) -> String {
    if depth > SPELLED_DEPTH {
        return "…".into();
    }
    let inner = |ty: &Type| spell(ty, depth + 1);
    match ty {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(list) => format!("list<{}>", inner(&list.ty())),
        Type::Option(option) => format!("option<{}>", inner(&option.ty())),
        Type::Result(result) => {
            let part = |ty: Option<Type>| ty.map_or_else(|| "_".to_owned(), |ty| inner(&ty));
            format!("result<{}, {}>", part(result.ok()), part(result.err()))
        }
        Type::Tuple(tuple) => format!("tuple<{}>", tuple.types().map(|ty| inner(&ty)).collect::<Vec<_>>().join(", ")),
        Type::Record(record) => {
            let fields: Vec<String> = record.fields().map(|f| format!("{}: {}", f.name, inner(&f.ty))).collect();
            format!("record {{ {} }}", fields.join(", "))
        }
        Type::Variant(variant) => {
            let cases: Vec<String> = variant
                .cases()
                .map(|case| match &case.ty {
                    Some(ty) => format!("{}({})", case.name, inner(ty)),
                    None => case.name.to_owned(),
                })
                .collect();
            format!("variant {{ {} }}", cases.join(", "))
        }
        Type::Enum(names) => format!("enum {{ {} }}", names.names().collect::<Vec<_>>().join(", ")),
        Type::Flags(names) => format!("flags {{ {} }}", names.names().collect::<Vec<_>>().join(", ")),
        other => format!("{other:?}"),
    }
}
