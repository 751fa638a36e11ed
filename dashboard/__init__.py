"""Streamlit dashboard for the face-denoising lab (display only: it never trains).

Start it with ``streamlit run dashboard/app.py``.
"""
