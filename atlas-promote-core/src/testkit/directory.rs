use crate::backend::Directory;

/// Check a [`Directory`] against its contract, given a person it knows and
/// (some of) the roles they hold.
///
/// It checks that the person holds every role given, and that someone
/// unknown holds none (`Ok(vec![])`, not an error).
pub async fn directory_suite(directory: &dyn Directory, person_with_roles: (&str, &[&str])) {
    let (person, roles) = person_with_roles;
    let held = directory.roles(person).await.expect("roles of a known person");
    for role in roles {
        assert!(held.iter().any(|r| r == role), "Directory: {person} holds {role}, but roles returned {held:?}");
    }
    let unknown = directory.roles("testkit-nobody-has-this-login").await;
    match unknown {
        Ok(roles) => assert!(roles.is_empty(), "Directory contract: someone unknown holds no roles; got {roles:?}"),
        Err(e) => panic!("Directory contract: someone unknown holds no roles (Ok(vec![])), not an error; got {e}"),
    }
}
