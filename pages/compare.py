import streamlit as st

if "workbench" not in st.session_state:
    # Opened without the router: after a server restart Streamlit may run a pages/ file directly
    # (its legacy multipage mode) until app.py has called st.navigation once. Go through the router.
    st.switch_page("app.py", query_params=st.query_params.to_dict())

st.title("Compare")
st.write("Coming next: sweep grids over seeds, safety tolerances and prompt variants, with A/B views. "
         "Meanwhile `flux-lab sweep` runs them from the command line.")
